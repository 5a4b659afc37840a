"""BrainLeaks-v2 without gradients: inversion of a deployed network from its outputs only.

``bl-v2-query`` searches BL-v2's space (Bernoulli spike probabilities X_p per attacked class) but
sees the target only through a counted ``QueryOracle`` (``nmprivacy.attacks.query_oracle``): the
output spike counts (default), the top-1 label, or the output membrane of each query. Every
update is estimated from the scores of the population's queries (docs/query-attack.md has the
equations, the measurements behind the defaults and the settings per data set).

Rate parameters: ``theta`` ``[K, bins, C, h, w]`` in [0, 1]; ``X_p = A theta`` ``[K, T, C, H, W]``
with ``A`` linear (each time bin repeated over its steps, ``h x w`` up-sampled bilinearly to
``H x W``; ``bins = T`` and ``h x w = H x W`` is BL-v2's own space). Per iteration and class,
``P`` queries ``x_i ~ Bernoulli(X_p)`` are answered, scored ``L_i = loss(answer_i, y) + xi *
density(x_i)``, shaped into fitness ``f_i`` and turned into a gradient estimate ``g`` of
``E[L]`` with respect to ``theta``; BL-v2's step (``blv2_update_``: RMSProp with momentum,
negatives to 0, a class whose maximum exceeds 1 divided by it) follows.

Estimators (``estimator``):
- ``"bernoulli"``: the score function of the Bernoulli search distribution,
  ``grad_p E[L] = E[L(x) (x - p) / (p (1 - p))]`` (``score="vanilla"``) or its natural-gradient
  form ``E[L(x) (x - p)]`` (``score="natural"``, Fisher ``1 / (p (1 - p))`` per step divided
  out), mapped to ``theta`` by ``A^T``; antithetic pairs ``x = 1[u < p]``, ``x' = 1[1 - u < p]``.
- ``"gaussian"``: each member first perturbs the rate parameters, ``theta_i = clip(theta +
  sigma eps_i, 0, 1)``, then draws ``x_i ~ Bernoulli(A theta_i)``; the score of this hierarchical
  search distribution with respect to ``theta`` is ``eps_i / sigma``, so
  ``g = (1 / (P sigma)) sum_i f_i eps_i`` (antithetic: mirrored ``eps``, ``-eps``).
Fitness shaping (``shaping``): ``"none"`` (``f = L``), ``"baseline"`` (``f_i = L_i`` minus the
mean of the other antithetic groups: unbiased), ``"rank"`` (centred ranks in [-1/2, 1/2], ties
averaged).

One module on purpose (~400 lines): the rate map, the estimator, the attack loop and its trace
are one algorithm around BL-v2's state (``BLv2State``); the oracles live in ``query_oracle``.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from nmprivacy.attacks.blv2 import BLv2State, blv2_update_, class_generator
from nmprivacy.attacks.base import AttackInfo, Inversion, RegisteredAttack
from nmprivacy.attacks.common import Timer, check_classes, generator, model_steps, require_domain
from nmprivacy.attacks.query_oracle import CountedOracle, EmulationOracle, QueryAnswer, QueryInversion, QueryTrace, check_threat
from nmprivacy.attacks.state import BestSoFar
from nmprivacy.encoding import bernoulli_spikes
from nmprivacy.errors import NmprivacyError
from nmprivacy.models.base import TargetModel, spike_readout
from nmprivacy.presets import BLv2QuerySettings
from nmprivacy.progress import bar as progress_bar

QueryOracleFactory = Callable[[TargetModel, str], CountedOracle]

# A class adopts another population's query (``share``) only if that query shows it with more
# than this confidence (counts: a clear majority of the output spikes). Measured on digits-28
# (snn-lava NetX, 30,000 queries, seeds 0-2): adopting any query above chance made 43-50 % attack
# accuracy (classes kept jumping to other classes' inputs with one stray spike); above 1/2, 90-93 %
# against 80-93 % without sharing.
ADOPT_CONFIDENCE = 0.5

# Per population without a query above chance, the gaussian estimator's sigma grows by this
# factor (up to ``sigma_max``): a target whose output neurons stay silent around the start gives
# no fitness differences at all, and only wider perturbations find inputs that make them spike.
EXPLORE_GROWTH = 1.25


def emulation_oracle(model: TargetModel, threat: str) -> CountedOracle:
    """The default oracle: ``model`` queried in-process (``EmulationOracle``)."""
    return EmulationOracle(model, threat)


class RateMap:
    """The linear map ``A``: rate parameters ``[K, bins, C, h, w]`` -> X_p ``[K, T, C, H, W]``
    (time bins repeated over their steps, bilinear spatial up-sampling), and its adjoint."""

    def __init__(self, steps: int, input_shape: Sequence[int], bins: int, grid: int | None) -> None:
        if not 1 <= bins <= steps:
            raise NmprivacyError(f"time_bins={bins} must be between 1 and T={steps}")
        self.steps, self.bins = steps, bins
        self.input_shape = tuple(int(s) for s in input_shape)
        spatial = self.input_shape[-2:] if len(self.input_shape) >= 3 else None
        if grid is None or spatial is None or (grid >= spatial[0] and grid >= spatial[1]):
            self.grid_shape = self.input_shape
            self.upsample = False
        else:
            if grid < 1:
                raise NmprivacyError(f"grid={grid} must be a positive side length (or None for full resolution)")
            self.grid_shape = (*self.input_shape[:-2], min(grid, spatial[0]), min(grid, spatial[1]))
            self.upsample = True
        self.time_index = (torch.arange(steps) * bins) // steps  # step t -> its bin

    def param_shape(self, k: int) -> tuple[int, ...]:
        """Shape of the rate parameters of ``k`` classes."""
        return (k, self.bins, *self.grid_shape)

    def spatial(self, theta: torch.Tensor) -> torch.Tensor:
        """``[..., bins, *grid_shape]`` -> ``[..., bins, *input_shape]`` (bilinear, a convex combination)."""
        if not self.upsample:
            return theta
        lead = theta.shape[: -len(self.grid_shape)]
        flat = theta.reshape(-1, math.prod(self.grid_shape[:-2]), *self.grid_shape[-2:])
        up = F.interpolate(flat, size=self.input_shape[-2:], mode="bilinear", align_corners=False)
        return up.reshape(*lead, *self.input_shape)

    def spatial_adjoint(self, g: torch.Tensor) -> torch.Tensor:
        """``A_s^T g`` for ``g`` ``[..., bins, *input_shape]`` -> ``[..., bins, *grid_shape]``."""
        if not self.upsample:
            return g
        lead = g.shape[: -len(self.input_shape)]
        probe = torch.zeros(*lead, *self.grid_shape, requires_grad=True)
        with torch.enable_grad():
            (out,) = torch.autograd.grad(self.spatial(probe), probe, grad_outputs=g)
        return out

    def expand_time(self, pb: torch.Tensor, time_dim: int) -> torch.Tensor:
        """Per-bin tensor (bins at ``time_dim``) -> per-step tensor (T at ``time_dim``)."""
        return pb.index_select(time_dim, self.time_index)

    def bin_sum(self, x: torch.Tensor, time_dim: int) -> torch.Tensor:
        """Per-step tensor -> sums within each time bin (adjoint of ``expand_time``)."""
        shape = list(x.shape)
        shape[time_dim] = self.bins
        return torch.zeros(shape, dtype=x.dtype).index_add_(time_dim, self.time_index, x)

    def probabilities(self, theta: torch.Tensor) -> torch.Tensor:
        """X_p ``[K, T, *input_shape]`` of rate parameters ``theta`` ``[K, bins, *grid_shape]``."""
        return self.expand_time(self.spatial(theta), 1)


def shape_fitness(losses: torch.Tensor, shaping: str, groups: int) -> torch.Tensor:
    """Fitness ``[K, P]`` of losses ``[K, P]`` whose members form ``groups`` antithetic groups
    (member ``i`` in group ``i % groups``; ``groups = P`` for independent members)."""
    if shaping == "none":
        return losses.clone()
    k, p = losses.shape
    if shaping == "baseline":
        if groups < 2:
            raise NmprivacyError("baseline shaping needs at least 2 independent groups per population: raise population")
        group = torch.arange(p) % groups
        group_sum = torch.zeros(k, groups, dtype=losses.dtype).index_add_(1, group, losses)
        others = (losses.sum(dim=1, keepdim=True) - group_sum[:, group]) / (p - p // groups)
        return losses - others
    if shaping == "rank":
        order = losses.argsort(dim=1)
        ranks = torch.empty_like(losses).scatter_(1, order, torch.arange(p, dtype=losses.dtype).expand(k, p).contiguous())
        # ties share their mean rank
        for row in range(k):
            vals, inverse = torch.unique(losses[row], return_inverse=True)
            if len(vals) < p:
                mean_rank = torch.zeros(len(vals), dtype=losses.dtype).index_add_(0, inverse, ranks[row])
                mean_rank /= torch.bincount(inverse, minlength=len(vals)).to(losses.dtype)
                ranks[row] = mean_rank[inverse]
        return ranks / max(p - 1, 1) - 0.5
    raise NmprivacyError(f"unknown fitness shaping '{shaping}': choose rank, baseline or none")


def visible_confidence(answer: QueryAnswer, num_classes: int, temperature: float = 1.0) -> torch.Tensor:
    """The attacker-visible confidence ``[B, C]`` of each query in each class: counts: softmax
    of the spike counts (divided by ``temperature``); label: 1 for the answered class (a row of
    zeros for no answer); membrane: the model's read-out (per-step softmax averaged over T).
    The identity loss of a query for class ``y`` is ``1 - conf[:, y]``."""
    if answer.threat == "counts":
        return torch.softmax(answer.counts.to(torch.float32) / temperature, dim=1)
    if answer.threat == "label":
        hit = answer.labels[:, None] == torch.arange(num_classes)[None, :]
        return hit.to(torch.float32)
    return spike_readout(answer.membrane.transpose(0, 1))


class BernoulliEstimator:
    """Queries and gradient estimate of one class's population (module docstring, ``estimator``).

    ``draw(theta)`` returns the population's queries ``[P, T, *input_shape]`` (binary float32)
    for rate parameters ``theta`` ``[bins, *grid_shape]``; ``gradient(fitness)`` the estimate
    ``[bins, *grid_shape]`` of ``d E[L] / d theta`` from the fitness ``[P]`` of those queries."""

    def __init__(self, rates: RateMap, settings: BLv2QuerySettings, gen: np.random.Generator) -> None:
        self.rates, self.s, self.gen = rates, settings, gen
        p = settings.population
        if settings.antithetic and p % 2:
            raise NmprivacyError(f"antithetic sampling needs an even population, got {p}: pass an even population")
        self.groups = p // 2 if settings.antithetic else p
        steps, shape = rates.steps, rates.input_shape
        self.u = torch.empty((self.groups, steps, *shape))
        self.x = torch.empty((p, steps, *shape))
        self.eps = torch.empty((self.groups, *rates.param_shape(1)[1:])) if settings.estimator == "gaussian" else None
        self.sigma = float(settings.sigma)  # the gaussian estimator's current perturbation (see ``explore``)
        self._p: torch.Tensor | None = None

    def draw(self, theta: torch.Tensor) -> torch.Tensor:
        s, rates, g = self.s, self.rates, self.groups
        if s.estimator == "gaussian":
            self.gen.standard_normal(out=self.eps.numpy(), dtype=np.float32)
            eps = torch.cat([self.eps, -self.eps]) if s.antithetic else self.eps
            members = (theta.unsqueeze(0) + self.sigma * eps).clamp_(0.0, 1.0)
            p = rates.expand_time(rates.spatial(members), 1)  # [P, T, ...]
        else:
            members = theta.unsqueeze(0)
            p = rates.expand_time(rates.spatial(members), 1)  # [1, T, ...]
        self._p, self._members = p, members
        self.gen.random(out=self.u.numpy(), dtype=np.float32)
        pg = p[:g] if p.shape[0] > 1 else p
        torch.lt(self.u, pg, out=self.x[:g])
        if s.antithetic:
            pa = p[g:] if p.shape[0] > 1 else p
            torch.gt(self.u, 1.0 - pa, out=self.x[g:])  # 1 - u < p
        return self.x

    def explore(self, stuck: bool) -> None:
        """Widen the perturbation by ``EXPLORE_GROWTH`` (up to ``sigma_max``) after a population
        none of whose queries scored above chance; back to ``sigma`` once one did."""
        s = self.s
        self.sigma = min(s.sigma_max, self.sigma * EXPLORE_GROWTH) if stuck else float(s.sigma)

    def member(self, i: int) -> torch.Tensor:
        """The rate parameters ``[bins, *grid_shape]`` query ``i`` of the last draw was sampled from."""
        return self._members[i if self._members.shape[0] > 1 else 0].clone()

    def gradient(self, fitness: torch.Tensor) -> torch.Tensor:
        s, rates = self.s, self.rates
        pop = fitness.shape[0]
        if s.estimator == "gaussian":
            eps = torch.cat([self.eps, -self.eps]) if s.antithetic else self.eps
            return torch.tensordot(fitness, eps, dims=1) / (pop * self.sigma)
        p = self._p[0]  # [T, ...]
        weighted = torch.tensordot(fitness, self.x, dims=1) - fitness.sum() * p  # sum_i f_i (x_i - p)
        if s.score == "vanilla":
            weighted = weighted / (p * (1 - p)).clamp_min(1e-6)
        elif s.score != "natural":
            raise NmprivacyError(f"unknown score '{s.score}': choose natural or vanilla")
        g_p = rates.bin_sum(weighted.unsqueeze(0), 1) / pop  # [1, bins, *input_shape]
        return rates.spatial_adjoint(g_p)[0]


class BrainLeaksV2Query(RegisteredAttack):
    """``bl-v2-query``: BL-v2 through a counted output-only oracle; ``run`` attacks all classes,
    each iteration one batch of ``K * population`` queries."""

    name = "bl-v2-query"
    info = AttackInfo(settings="bl_v2_query", settings_type=BLv2QuerySettings, plan="loihi", quick={"query_budget": 2000}, queries=True)

    def summarise(self, inversion: Inversion, evaluators: list, classes: list[int], seed: int, steps: int | None) -> dict:
        """The queries, the threat and the leakage vs queries of the run's trace (``nmprivacy.evaluation.leakage``)."""
        from nmprivacy.evaluation.leakage import leakage_curve

        return {"queries": inversion.queries, "threat": inversion.threat,
                "leakage_vs_queries": leakage_curve(evaluators, inversion.trace, classes, seed, steps)}

    def __init__(self, settings: BLv2QuerySettings = BLv2QuerySettings(), oracle: QueryOracleFactory = emulation_oracle, steps: int | None = None) -> None:
        self.settings = settings
        self.oracle_factory = oracle
        self.steps = steps

    def iterations_for(self, classes: int) -> int:
        """Iterations of a run on ``classes`` classes: ``query_budget // (classes * population)``
        when a budget is set, else ``iterations``."""
        s = self.settings
        if s.query_budget is None:
            return s.iterations
        n = s.query_budget // (classes * s.population)
        if n < 1:
            raise NmprivacyError(
                f"a budget of {s.query_budget} queries does not cover one iteration of {classes} classes x {s.population} queries: raise --queries"
            )
        return n

    def run(self, model: TargetModel, classes: Sequence[int], seed: int = 0) -> QueryInversion:
        """Invert ``model`` for ``classes`` through the oracle (the model itself is read only for
        its input shape, classes and T); ``probabilities`` holds X_p, ``reconstructions`` one
        Bernoulli sample of it, ``trace`` the leakage-vs-queries snapshots."""
        s = self.settings
        require_domain(model, "spikes", self.name)
        threat = check_threat(s.threat)
        targets = check_classes(model, classes)
        steps = model_steps(model, self.steps)
        oracle = self.oracle_factory(model, threat)
        k, pop = len(targets), s.population
        iterations = self.iterations_for(k)
        rates = RateMap(steps, model.info.input_shape, s.time_bins, s.grid)
        state = BLv2State.start(rates.param_shape(k), s.init)
        estimators = [BernoulliEstimator(rates, s, class_generator(seed, int(c))) for c in targets.tolist()]
        pop_targets = targets.repeat_interleave(pop)
        best = BestSoFar.start(state.xp)
        losses, confs = torch.zeros(iterations, k), torch.zeros(iterations, k)
        trace = TraceRecorder(s.trace_points, k, rates)
        start_queries = oracle.queries
        seen: QueryAnswer | None = None
        adopted, chance = 0, 1.0 / model.info.num_classes
        timer = Timer()
        bar = progress_bar(range(iterations), desc=self.name, leave=False)
        for it in bar:
            queries = torch.stack([e.draw(state.xp[j]) for j, e in enumerate(estimators)])  # [K, P, T, ...]
            seen = oracle(queries.reshape(k * pop, steps, *model.info.input_shape))
            visible = visible_confidence(seen, model.info.num_classes, s.count_temperature)[:, targets]  # [K * P, K]
            conf = visible.reshape(k, pop, k).diagonal(dim1=0, dim2=2).T  # [K, P]: each query in its own class
            density = queries.reshape(k, pop, -1).mean(dim=2)
            # sparsity only ranks populations with a query above chance in the target: before that,
            # it would drive X_p towards silence, where no query ever scores
            found = (conf.amax(dim=1) > chance).to(conf.dtype)[:, None]
            total = 1.0 - conf + s.sparsity * found * density
            fitness = shape_fitness(total, s.shaping, estimators[0].groups)
            g = torch.stack([e.gradient(fitness[j]) for j, e in enumerate(estimators)])
            conf_k = conf.mean(dim=1)
            best.record(conf_k, state.xp)  # the parameters these queries were drawn from
            blv2_update_(state, g, s)
            if s.share:
                adopted += self._adopt(state, estimators, visible, conf, pop, chance)
            for j, stuck in enumerate((conf.amax(dim=1) <= chance).tolist()):
                estimators[j].explore(stuck)
            losses[it], confs[it] = total.mean(dim=1), conf_k
            trace.record(oracle.queries - start_queries, conf_k, best.point if s.keep == "best" else state.xp)
            bar.set_postfix(conf=f"{conf_k.mean():.3f}", queries=oracle.queries - start_queries)
        seconds = timer.elapsed()
        bar.close()
        final = best.point if s.keep == "best" else state.xp
        trace.finish(oracle.queries - start_queries, confs[-1] if iterations else torch.zeros(k), final)
        xp = rates.probabilities(final)
        return QueryInversion(
            attack=self.name,
            classes=targets.tolist(),
            reconstructions=bernoulli_spikes(xp, generator(seed)),
            loss_curve=losses,
            confidence_curve=confs,
            iterations=iterations,
            seconds_per_iteration=seconds / max(iterations, 1),
            seed=seed,
            probabilities=xp,
            config={**asdict(s), "steps": steps, "oracle": oracle.name, "adoptions": adopted},
            queries=oracle.queries - start_queries,
            oracle=oracle.name,
            threat=threat,
            trace=trace.result(),
            seen=_per_class(seen, k, pop) if seen is not None else None,
        )


    @staticmethod
    def _adopt(state: BLv2State, estimators: list[BernoulliEstimator], visible: torch.Tensor, own: torch.Tensor, pop: int, chance: float) -> int:
        """Classes none of whose own queries ``own`` ``[K, P]`` scored above ``chance`` take the
        rate parameters of the batch's query that scored best in their class (``visible``
        ``[K * P, K]``) if it scored above ``ADOPT_CONFIDENCE``; their step state restarts.
        Returns how many classes adopted."""
        stuck = own.amax(dim=1) <= chance
        count = 0
        for k in torch.nonzero(stuck).flatten().tolist():
            value, index = visible[:, k].max(dim=0)
            if float(value) <= ADOPT_CONFIDENCE:
                continue
            source, member = divmod(int(index), pop)
            state.xp[k] = estimators[source].member(member)
            state.r[k].zero_()
            state.nu[k].zero_()
            count += 1
        return count


def _per_class(answer: QueryAnswer, k: int, pop: int) -> torch.Tensor:
    """The last population's answers with a class axis: counts ``[K, P, C]``, labels ``[K, P]``,
    membrane ``[K, P, T, C]``."""
    value = {"counts": answer.counts, "label": answer.labels, "membrane": answer.membrane}[answer.threat]
    return value.reshape(k, pop, *value.shape[1:])


class TraceRecorder:
    """Collects ``QueryTrace`` snapshots: the first iteration at or past each of ``points``
    (total queries over all classes), plus the end of the run."""

    def __init__(self, points: Sequence[int], classes: int, rates: RateMap) -> None:
        self.points = sorted(int(p) for p in points)
        self.rates = rates
        self.next = 0
        self.queries: list[int] = []
        self.conf: list[torch.Tensor] = []
        self.rate_snapshots: list[torch.Tensor] = []
        self.classes = classes

    def _add(self, queries: int, conf: torch.Tensor, theta: torch.Tensor) -> None:
        self.queries.append(int(queries))
        self.conf.append(conf.clone())
        self.rate_snapshots.append(self.rates.spatial(theta).clone())  # [K, bins, *input_shape]

    def record(self, queries: int, conf: torch.Tensor, theta: torch.Tensor) -> None:
        """Snapshot after an iteration that reached ``queries`` if it passed the next point."""
        passed = False
        while self.next < len(self.points) and queries >= self.points[self.next]:
            self.next += 1
            passed = True
        if passed:
            self._add(queries, conf, theta)

    def finish(self, queries: int, conf: torch.Tensor, theta: torch.Tensor) -> None:
        """The end-of-run snapshot (unless the last iteration was already recorded)."""
        if not self.queries or self.queries[-1] != queries:
            self._add(queries, conf, theta)
        else:  # the same queries: the returned parameters may differ (keep="best" after the last step)
            self.rate_snapshots[-1] = self.rates.spatial(theta).clone()

    def result(self) -> QueryTrace:
        return QueryTrace(
            queries=torch.tensor(self.queries, dtype=torch.long),
            confidence=torch.stack(self.conf) if self.conf else torch.zeros(0, self.classes),
            rates=torch.stack(self.rate_snapshots) if self.rate_snapshots else torch.zeros(0),
            steps=self.rates.steps,
            bins=self.rates.bins,
        )
