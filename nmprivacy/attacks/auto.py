"""``bl-auto``: a parameter-free inversion, so an audit does not under-report on a network whose
best attack settings nobody knows (docs/method.md §5.8; after AutoAttack, Croce & Hein 2020).

Per class, an ensemble of BL-v1 and BL-v2 runs (``BLAutoSettings.members``):
- the fixed attacks of the data-set family's ``default``, ``reference`` and ``paper`` settings,
  each run exactly as that attack runs alone (same settings, seed and code: bit-identical), so
  they cover X_p starts (0, a small uniform, 0.5), step rules (bounded and unbounded RMSProp) and
  population weightings (e^{-L}, loss shares);
- ``bl-v2:adaptive``: BL-v2 with the automatic step of ``nmprivacy.attacks.step_rule`` (halved on
  a plateau of the target's confidence, restarting from the best X_p), from a small uniform start,
  or from the domain's mean spike density under the ``domain`` prior, run until it converges.

Selection reads only what the attacker sees: each member's candidate is scored by the target's
mean confidence in the class over ``draws`` fresh Bernoulli draws of its X_p (BL-v1: its binary
input); among the members within ``tie`` of the best, the densest wins (prior ``none``; below
half of all voxels), or the one whose density is closest to the domain's (prior ``domain``).
Chosen on held-in foreign networks: the sparsest inputs the target is as sure of are the
adversarial ones (evaluators recognise them least). No evaluator is read (tests/test_auto.py
fails if one is).

Layouts: as every spiking attack, reconstructions and X_p ``[K, T, *input_shape]``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence

import torch

from nmprivacy.attacks.base import AttackInfo, GradientOracle, Inversion
from nmprivacy.attacks.blv1 import BrainLeaksV1
from nmprivacy.attacks.blv2 import BLv2Search, BrainLeaksV2, PopulationSampler, blv2_iteration
from nmprivacy.attacks.common import SpikingAttack, oracle_name
from nmprivacy.attacks.executor import ClassParts
from nmprivacy.attacks.layout import to_model_layout
from nmprivacy.attacks.step_rule import HalvingStep
from nmprivacy.encoding import bernoulli_spikes
from nmprivacy.evaluation.diagnostics import data_density
from nmprivacy.models.base import TargetModel
from nmprivacy.presets import BLAutoSettings, BLv2Settings, family_variant


SATURATED = 0.5  # candidates at least this dense are preferred last among tied ones (e.g. an X_p left at a start of 0.5)


@dataclass
class MemberRun:
    """One member's run: its inversion and, per class, the attacker-visible score of its candidate."""

    name: str
    inversion: Inversion
    candidate: torch.Tensor  # [K, T, ...] what the member offers per class: X_p (BL-v2) or its binary input (BL-v1)
    confidence: torch.Tensor  # [K] target's mean confidence in the class over fresh draws of the candidate
    density: torch.Tensor  # [K] mean spike probability of the candidate
    seconds: float


@dataclass
class AutoInversion(Inversion):
    """An ``Inversion`` whose class ``k`` came from member ``winners[k]``; ``members`` keeps every member's run."""

    winners: list[str] = field(default_factory=list)
    members: dict[str, MemberRun] = field(default_factory=dict)
    prior: str = "none"
    domain_density: float | None = None


def member_settings(settings: BLAutoSettings, name: str) -> Any:
    """The settings member ``name`` (``attack:variant``) runs with: the family's fixed variant
    (``bl-v2:adaptive``: the default variant's BL-v2), with ``member_iterations`` when set."""
    attack, variant = name.split(":")
    preset = family_variant(settings.family, "default" if variant == "adaptive" else variant)
    member = preset.bl_v1 if attack == "bl-v1" else preset.bl_v2
    return member if settings.member_iterations is None else replace(member, iterations=settings.member_iterations)


def same_members(settings: BLAutoSettings) -> dict[str, str]:
    """Member -> the first member that runs the very same attack with the same settings (itself
    if none): on some families two variants share a setting (e.g. BL-v1's Bernoulli mask)."""
    first: dict[str, str] = {}
    seen: list[tuple[str, Any, str]] = []
    for name in settings.members:
        attack = name.split(":")[0] if not name.endswith(":adaptive") else name
        values = member_settings(settings, name)
        match = next((n for a, v, n in seen if a == attack and v == values), None)
        first[name] = match or name
        if match is None:
            seen.append((attack, values, name))
    return first


def distinct_members(settings: BLAutoSettings) -> list[str]:
    """The members that run (one per distinct attack and settings), in the settings' order."""
    return [n for n, same in same_members(settings).items() if n == same]


def member_running(settings: BLAutoSettings, attack: str, values: Any) -> str | None:
    """The distinct member of the ensemble ``settings`` that runs the fixed attack ``attack``
    (``bl-v1`` or ``bl-v2``) with exactly the settings ``values``, or None. Such a member is that
    attack bit for bit (same seed and T), so an audit that runs both reuses the member's run."""
    for name in distinct_members(settings):
        if name.split(":")[0] == attack and not name.endswith(":adaptive") and member_settings(settings, name) == values:
            return name
    return None


class BrainLeaksAuto(SpikingAttack):
    """The ``bl-auto`` ensemble on a spiking model (module docstring)."""

    info = AttackInfo(settings="bl_auto", settings_type=BLAutoSettings, iterations="member_iterations",
                      quick={"member_iterations": 5, "adaptive_iterations": 6, "draws": 4})  # members = the quick BL-v1/BL-v2 runs
    settings: BLAutoSettings

    def __init__(self, settings: BLAutoSettings = BLAutoSettings(), oracle: Any = None, steps: int | None = None) -> None:
        from nmprivacy.attacks.common import default_oracle

        super().__init__(settings, oracle or default_oracle, steps)
        self.domain_density: float | None = None  # set by ``prepare`` from public data of the domain

    def prepare(self, splits: Any) -> None:
        """What the attacker may know of the input domain: the mean spike density of the test split
        (disjoint from the training set), used only under the ``domain`` prior."""
        if self.settings.prior == "domain":
            self.domain_density = data_density(splits)

    def summarise(self, inversion: Inversion, evaluators: list[Any], classes: list[int], seed: int, steps: int | None) -> dict[str, Any]:
        """For the report: the winning member per class, every member's attacker-visible confidence
        and seconds, the ensemble's cost, and the prior alone scored by the evaluators (the same
        search without the target: X_p stays at the prior's start for every class), so what
        leaked is the model's, not the prior's."""
        from nmprivacy.evaluation.scoring import score, summarize

        cfg = inversion.config
        start = inversion.domain_density if inversion.prior == "domain" and inversion.domain_density is not None else 0.0  # type: ignore[attr-defined]
        prior_alone = torch.full_like(inversion.probabilities, float(start))  # type: ignore[arg-type]
        return {
            "prior": inversion.prior, "domain_density": inversion.domain_density,  # type: ignore[attr-defined]
            "winners": {str(c): w for c, w in zip(classes, cfg["winners"])},
            "member_confidence": cfg["member_confidence"], "member_seconds": cfg["member_seconds"], "seconds": cfg["seconds"],
            "prior_alone": summarize([[score(e, prior_alone, classes, seed, steps) for e in evaluators]]),
        }

    def parts(self, inversion: Inversion) -> dict[str, Any]:
        """Every member's own reconstructions (each member is bit-for-bit the fixed attack it
        wraps): the audit scores them too, so its worst case is at least every fixed variant's."""
        return {name: m.inversion.reconstructions for name, m in getattr(inversion, "members", {}).items()}

    def run(self, model: TargetModel, classes: Sequence[int], seed: int = 0) -> AutoInversion:
        """Run every member on ``classes``, score their candidates on the target, keep the best per class."""
        s = self.settings
        if s.prior == "domain" and self.domain_density is None:
            from nmprivacy.errors import NmprivacyError

            raise NmprivacyError("bl-auto with prior 'domain' needs the domain's mean spike density: run it through the audit, or call prepare(splits) first")
        run = self.start(model, classes, seed)
        shared = run.oracle  # one prepared oracle for every member
        names = distinct_members(s)
        members = {name: self._member(name, model, run.targets.tolist(), seed, shared, run.steps) for name in names}
        gen = torch.Generator().manual_seed(int(seed) * 7919 + 17)
        for m in members.values():
            m.confidence, m.density = score_candidate(model, m.candidate, run.targets, s.draws, gen, shared)
        winners = select(members, s.tie, self.domain_density if s.prior == "domain" else None)
        pick = lambda attr: torch.stack([getattr(members[w].inversion, attr)[i] if attr != "candidate" else members[w].candidate[i]  # noqa: E731
                                          for i, w in enumerate(winners)])
        reconstructions = pick("reconstructions")
        curves = [members[w].inversion.confidence_curve[:, i] for i, w in enumerate(winners)]
        length = max(len(c) for c in curves)
        curve = torch.stack([torch.cat([c, c[-1:].expand(length - len(c))]) if len(c) else torch.zeros(length) for c in curves], dim=1)
        loss_curves = [members[w].inversion.loss_curve[:, i] for i, w in enumerate(winners)]
        loss = torch.stack([torch.cat([c, c[-1:].expand(length - len(c))]) if len(c) else torch.zeros(length) for c in loss_curves], dim=1)
        iterations = sum(m.inversion.iterations for m in members.values())
        seconds = sum(m.seconds for m in members.values())
        config = {
            **asdict(s), "steps": run.steps, "oracle": oracle_name(shared), "winners": winners, "seconds": seconds,
            "member_seconds": {n: m.seconds for n, m in members.items()},
            "member_confidence": {n: m.confidence.tolist() for n, m in members.items()},
            "member_density": {n: m.density.tolist() for n, m in members.items()},
            "domain_density": self.domain_density, "same_as": {n: d for n, d in same_members(s).items() if n != d},
        }
        return AutoInversion(
            attack=self.name, classes=run.targets.tolist(), reconstructions=reconstructions, loss_curve=loss, confidence_curve=curve,
            iterations=iterations, seconds_per_iteration=seconds / max(iterations, 1), seed=seed, probabilities=pick("candidate"),
            config=config, winners=winners, members=members, prior=s.prior, domain_density=self.domain_density,
        )

    def _member(self, name: str, model: TargetModel, classes: list[int], seed: int, oracle: GradientOracle, steps: int) -> MemberRun:
        """Run member ``name`` with the shared oracle (fixed members exactly as their attack alone)."""
        settings = member_settings(self.settings, name)
        started = time.perf_counter()
        shared = lambda _model: oracle  # noqa: E731
        if name == "bl-v2:adaptive":
            inv = self._adaptive(model, classes, seed, oracle, steps, settings)
        elif name.startswith("bl-v1"):
            inv = BrainLeaksV1(settings, oracle=shared, steps=steps).run(model, classes, seed)
        else:
            inv = BrainLeaksV2(settings, oracle=shared, steps=steps).run(model, classes, seed)
        candidate = inv.probabilities if inv.probabilities is not None else inv.reconstructions
        return MemberRun(name, inv, candidate.float(), torch.zeros(0), torch.zeros(0), time.perf_counter() - started)

    def _adaptive(self, model: TargetModel, classes: list[int], seed: int, oracle: GradientOracle, steps: int, v2: BLv2Settings) -> Inversion:
        """BL-v2 (the default variant's step and weighting, keeping the best X_p) from the prior's
        start with the halving step rule, until every class converged or ``adaptive_iterations``."""
        s = self.settings
        start = self.domain_density if s.prior == "domain" and self.domain_density is not None else s.start
        v2 = replace(v2, init=float(start), keep="best", iterations=s.member_iterations or s.adaptive_iterations, plateau_patience=0)
        targets = torch.as_tensor(classes, dtype=torch.long)
        sample_shape = (steps, *model.info.input_shape)
        search = BLv2Search.start(targets, sample_shape, v2)
        rule = HalvingStep.start(len(targets), v2.lr)
        parts = ClassParts(oracle, len(targets))

        def part_step(part_search: BLv2Search, part_rule: HalvingStep, part_oracle: GradientOracle) -> Any:
            sampler = PopulationSampler(part_search.targets, seed, v2.population, sample_shape, parts.helpers)

            def step(it: int) -> None:
                blv2_iteration(part_search, it, sampler.draw(part_search.state.xp), part_oracle, v2, lr=part_rule.lr)
                if (it + 1) % s.checkpoint == 0:
                    stalled = part_rule.check(part_search.best, s.tol)
                    state, best = part_search.state, part_search.best
                    state.xp[stalled] = best.point[stalled]  # restart from the best X_p, step state cleared
                    state.r[stalled] = 0.0
                    state.nu[stalled] = 0.0
            return step

        steps_ = [part_step(search.part(p.classes), rule.part(p.classes), p.oracle) for p in parts.parts]
        done = parts.run(steps_, v2.iterations, desc=f"{self.name} adaptive",
                         stop=lambda it: (it + 1) % s.checkpoint == 0 and bool(rule.converged(search.best, v2.lr, s.min_fraction, s.goal).all()))
        xp = search.best.point
        return Inversion(
            attack=f"{self.name}:adaptive", classes=targets.tolist(), reconstructions=bernoulli_spikes(xp, torch.Generator().manual_seed(int(seed))),
            loss_curve=search.losses[: done.iterations], confidence_curve=search.confs[: done.iterations], iterations=done.iterations,
            seconds_per_iteration=done.seconds_per_iteration, seed=seed, probabilities=xp,
            config={**asdict(v2), "steps": steps, "final_lr": rule.lr.tolist(), "halvings": rule.halvings.tolist()},
        )


@torch.no_grad()
def score_candidate(
    model: TargetModel, candidate: torch.Tensor, targets: torch.Tensor, draws: int, gen: torch.Generator, oracle: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class: the target's mean confidence in the class over ``draws`` Bernoulli draws of
    ``candidate`` ``[K, T, ...]`` (one draw when it is binary), and the candidate's mean density.
    The target answers through ``oracle.probabilities`` when the oracle has it (the attack
    engine: the same read-out, faster), else through ``model.probabilities``."""
    k = candidate.shape[0]
    binary = bool(((candidate == 0) | (candidate == 1)).all())
    n = 1 if binary else draws
    samples = candidate.unsqueeze(1).expand(k, n, *candidate.shape[1:])
    samples = samples if binary else bernoulli_spikes(samples.contiguous(), gen)
    flat = samples.reshape(k * n, *candidate.shape[1:])
    forward = getattr(oracle, "probabilities", None) or model.probabilities
    probs = forward(to_model_layout(flat, "spikes"))
    conf = probs.gather(1, targets.repeat_interleave(n)[:, None]).reshape(k, n).mean(dim=1)
    return conf, candidate.reshape(k, -1).mean(dim=1)


def select(members: dict[str, MemberRun], tie: float, domain: float | None) -> list[str]:
    """Per class, the winning member's name: the highest attacker-visible confidence; among those
    within ``tie`` of it, the densest candidate below ``SATURATED`` (the most evidence the target
    accepts: the sparsest inputs that reach the same confidence are the adversarial ones, docs/method.md
    §5.8), or (``domain`` given) the one whose density is closest to the domain's on a log scale.
    Members listed first win exact ties."""
    names = list(members)
    conf = torch.stack([members[n].confidence for n in names])  # [M, K]
    dens = torch.stack([members[n].density for n in names])
    tied = conf >= conf.max(dim=0).values - tie
    if domain is None:
        key = torch.where(dens < SATURATED, -dens, 1.0 + dens)  # saturated candidates only after every other
    else:
        key = (torch.log(dens.clamp_min(1e-6)) - math.log(max(domain, 1e-6))).abs()
    key = torch.where(tied, key, torch.full_like(key, float("inf")))
    return [names[int(i)] for i in key.argmin(dim=0)]


