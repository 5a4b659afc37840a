"""``make_plan``: a ``MiaConfig`` resolved into a ``Plan``: the data, the kind of the trained
models (the target's, or the references' recipe for a file), T, the threat and the oracles, and
which records are audited, kept out as RMIA's population, and trained on by each model
(docs/method.md §9.4)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from nmprivacy.errors import NmprivacyError
from nmprivacy.membership.observables import queries_for
from nmprivacy.membership.protocol import random_halves
from nmprivacy.mia.config import KINDS, LOIHI_KINDS, MiaConfig
from nmprivacy.presets import preset_for, with_overrides


@dataclass(frozen=True)
class Plan:
    """The run as resolved from a config: data, kinds, T, sizes, oracles, record indices."""

    splits: Any
    preset: Any
    kind: str  # kind of the trained models (the target's, or the references' recipe for a file)
    hidden: int | None
    steps: int | None
    references: int
    threat: str
    oracle: str
    reference_oracle: str
    queries: int
    pool_x: torch.Tensor
    pool_y: torch.Tensor
    in_train_split: np.ndarray  # [pool] bool
    audited: np.ndarray  # pool indices of the audited records [A]
    population: np.ndarray  # pool indices of the Z records no model trains on
    keep: np.ndarray  # [N, A]
    foreign: Any = None  # nmprivacy.targets.Target of a file, else None
    notes: tuple[str, ...] = ()

    @property
    def records(self) -> np.ndarray:
        """Pool indices of every observed record: audited, then population."""
        return np.concatenate([self.audited, self.population])


@dataclass(frozen=True)
class ReferenceRecipe:
    """Which reference models a target that nmprivacy did not train gets: their kind, first hidden
    size, ``target_config`` fields beyond the preset's (further hidden layers, learned delays) and
    the note the report prints."""

    kind: str
    hidden: int
    config: dict[str, Any]
    note: str


def reference_recipe(target: Any, delay_layers: Sequence[int] | None = None) -> ReferenceRecipe:
    """The references for a model nmprivacy did not train: a checkpoint's own kind and sizes; a
    stack of dense layers without recurrence (NetX, NIR; input -> hidden -> ... -> output) gets
    ``snn-lava`` references of the same layer sizes (``extra_hidden``) that learn one synaptic
    delay per neuron in each hidden layer where the file has delays (``delay_layers``, as Lava-DL's
    ``delay=True`` recipe; learned from their own data, not copied from the file); delays on the
    read-out layer are not reproduced (the note says so); ``delay_layers`` (from ``--set
    target_config.delay_layers``) replaces the file's choice; anything else is refused in one line."""
    from nmprivacy.network import DenseLayer, Network

    model = target.model
    kind = target.meta.get("kind")
    config = getattr(model, "config", None)
    if kind in KINDS and getattr(config, "hidden", None) is not None:
        extra = tuple(getattr(config, "extra_hidden", ()))
        delayed = tuple(getattr(config, "delay_layers", ()) if delay_layers is None else delay_layers)
        sizes = "-".join(str(n) for n in (config.hidden, *extra))
        fields: dict[str, Any] = {**({"extra_hidden": list(extra)} if extra else {}),
                                  **({"delay_layers": list(delayed)} if delayed or delay_layers is not None else {})}
        return ReferenceRecipe(kind, int(config.hidden), fields,
                               f"references: {kind} models of the checkpoint's size (hidden {sizes}), trained with nmprivacy's recipe")
    network = model.network()
    if isinstance(network, Network):
        layers = network.layers
        odd = [f"layer {i}: " + ("recurrent" if isinstance(x, DenseLayer) else "not dense") for i, x in enumerate(layers)
               if not (isinstance(x, DenseLayer) and x.weight_rec is None)]
        if odd or len(layers) < 2:
            raise NmprivacyError(
                f"{target.source} is not a stack of dense layers ({'; '.join(odd) or 'one layer'}; {network.describe()}): membership "
                "inference needs reference models of the same architecture, which nmprivacy can train only for dense stacks without "
                "recurrence (or pass a checkpoint folder)")
        sizes = "-".join(str(s) for s in network.sizes)
        extra = [int(n) for n in network.sizes[2:-1]]
        delayed = [i for i, x in enumerate(layers) if x.delay is not None and np.any(x.delay)]
        hidden_delayed = [i for i in delayed if i < len(layers) - 1]
        chosen = hidden_delayed if delay_layers is None else [int(i) for i in delay_layers]
        fields = {**({"extra_hidden": extra} if extra else {}), **({"delay_layers": chosen} if chosen or delay_layers is not None else {})}
        note = (f"references: snn-lava models (Lava-DL CUBA, the preset's schedule) of the file's layer sizes {sizes}, trained with nmprivacy's "
                "recipe, not with the file's own training")
        if delay_layers is not None and chosen != hidden_delayed:
            note += (f"; learned delays in layers {chosen or 'none'}, as --set target_config.delay_layers says (the file has synaptic delays in "
                     f"layers {hidden_delayed or 'none'})")
        elif hidden_delayed:
            per_synapse = [str(i) for i in hidden_delayed if layers[i].neuron_delays is None]
            note += (f"; like the file's synaptic delays (layers {', '.join(map(str, hidden_delayed))}), theirs are learned, one per neuron "
                     "(Lava-DL's delay=True)" + (f", where the file's vary per synapse (layers {', '.join(per_synapse)})" if per_synapse else ""))
        if len(layers) - 1 in delayed:
            note += f"; the file's read-out layer {len(layers) - 1} has synaptic delays, which the references do not have"
        return ReferenceRecipe("snn-lava", int(network.sizes[1]), fields, note)
    raise NmprivacyError(f"{target.source}: cannot tell which reference models to train for it: pass a NetX file, a NIR graph or a checkpoint folder")


def neuron_note(network: Any, preset: Any) -> list[str]:
    """A note when every layer of the file has the same Loihi CUBA neurons and they differ from
    the ``snn-lava`` references' (the preset's ``target_config``): the ``--set`` that gives the
    references the file's neurons. Empty otherwise."""
    from nmprivacy.models.snn_lava import SNNLava, SNNLavaConfig
    from nmprivacy.network import LoihiNeuron
    from nmprivacy.network import loihi

    neurons = {getattr(layer, "neuron", None) for layer in getattr(network, "layers", ())}
    if len(neurons) != 1 or not isinstance(next(iter(neurons)), LoihiNeuron):
        return []
    theirs = next(iter(neurons))
    fields = {k: v for k, v in preset.target_config.items() if k in ("threshold", "current_decay", "voltage_decay")}
    with torch.device("meta"):
        probe = SNNLava(SNNLavaConfig(input_shape=(1,), num_classes=1, hidden=1, **fields))
    blk = probe.blocks[0].neuron
    ours = (int(blk.cx_current_decay), int(blk.cx_voltage_decay), int(blk.v_th_mant))
    if ours == (theirs.i_decay, theirs.v_decay, theirs.vth_mant):
        return []
    unit = loihi.DECAY_UNIT  # the float decays and threshold slayer maps back onto these integers
    sets = (f"--set target_config.threshold={theirs.vth_mant / loihi.ACT_SHIFT:g} --set target_config.current_decay={theirs.i_decay / unit:.12g} "
            f"--set target_config.voltage_decay={theirs.v_decay / unit:.12g}")
    return [f"the file's neurons (iDecay {theirs.i_decay}, vDecay {theirs.v_decay}, vThMant {theirs.vth_mant}) are not the references' "
            f"(iDecay {ours[0]}, vDecay {ours[1]}, vThMant {ours[2]}): {sets} trains references with the file's"]


def default_population(pool: int, test: int, file_target: bool = False) -> int:
    """Z: 10 % of the population, at most 500 and at most half the test split (a quarter for a
    file target, whose only known non-members are test records), at least 1."""
    return max(1, min(500, round(0.1 * pool), test // (4 if file_target else 2)))


def make_plan(config: MiaConfig) -> Plan:
    """Load the data and the target, resolve every default and choose who trains on what."""
    from nmprivacy.data import load_dataset

    splits = load_dataset(config.dataset, root=config.data_root, **config.data_options)
    preset = preset_for(config.dataset, config.budget)
    preset = with_overrides(preset, {**({"hidden": config.hidden} if config.hidden is not None else {}), **config.overrides})
    kind, hidden, fields, steps, foreign, notes = _target(config, splits, preset)
    if fields:  # a file's references: snn-lava with its further hidden layers and learned delays
        preset = with_overrides(preset, {"target_config": {**preset.target_config, **fields}})
        if preset.target_config.get("delay_layers") and getattr(preset.snn_train, "dp", None) is not None:
            raise NmprivacyError(f"{config.target} has learned synaptic delays, which DP-SGD cannot train in the references (no per-sample "
                                 "gradient for a delay): add --set target_config.delay_layers=[] to train DP references without them")
    image_model = kind == "ann"
    threat, oracle, reference_oracle = _threat_and_oracles(config, kind, foreign)
    if image_model:
        notes.append("ann target: counts n/a (no output spikes); membrane = the logits; one query per record (deterministic)")
    queries = queries_for("image" if image_model else "spikes", splits.domain, int(config.queries))
    if splits.domain != "image" and not image_model:
        notes.append("event data are spikes already: one query per record")
    n = int(config.references)
    if foreign is None and n < 4:
        raise NmprivacyError(f"--references {n}: a target kind needs at least 4 models (each is the target once, with the others as its references)")
    if foreign is not None and n < 2:
        raise NmprivacyError(f"--references {n}: a target file needs at least 2 reference models")
    pool_x = torch.cat([splits.train.x, splits.test.x])
    pool_y = torch.cat([splits.train.y, splits.test.y])
    in_train, audited, population = _records(config, splits.name, len(splits.train), len(splits.test), foreign is not None)
    keep = random_halves(n, audited.size, config.seed + 1)
    return Plan(splits, preset, kind, hidden, steps, n, threat, oracle, reference_oracle, queries, pool_x, pool_y, in_train, audited,
                population, keep, foreign, tuple(notes))


def _target(config: MiaConfig, splits: Any, preset: Any) -> tuple[str, int | None, dict[str, Any], int | None, Any, list[str]]:
    """(kind of the trained models, their hidden size, their ``target_config`` fields beyond the preset's, T, the file's ``Target`` or None, notes)."""
    notes: list[str] = []
    foreign = None
    if config.target in KINDS:
        kind, hidden, fields = config.target, preset.hidden, {}
        steps = preset.steps if splits.domain == "image" else None
    elif Path(config.target).exists():
        from nmprivacy.targets import choose_steps, fit_to_data, load_target

        foreign = fit_to_data(load_target(config.target, dt=config.dt), splits.input_shape, splits.num_classes, splits.name)
        recipe = reference_recipe(foreign, preset.target_config.get("delay_layers"))
        kind, hidden, fields = recipe.kind, recipe.hidden, recipe.config
        notes.append(recipe.note)
        if kind == "snn-lava":
            notes.extend(neuron_note(foreign.model.network(), preset))
        if config.hidden is not None and config.hidden != hidden:
            notes.append(f"--hidden {config.hidden} was not used: the references take the target's own hidden size ({hidden})")
        notes.append("membership of the target: the data set's training split (after --limit-train) is taken to be what the file was trained on")
        steps = choose_steps(None, foreign, splits.name, config.overrides) if splits.domain == "image" else None
    else:
        raise NmprivacyError(f"--target '{config.target}' is neither a kind ({', '.join(KINDS)}) nor an existing NetX file, NIR graph or checkpoint folder")
    if foreign is not None and foreign.model.info.domain != "spikes" and kind != "ann":
        raise NmprivacyError(f"--target {config.target} is neither a spiking network nor an ann checkpoint: give a target nmprivacy can train references for")
    return kind, hidden, fields, steps, foreign, notes


def _threat_and_oracles(config: MiaConfig, kind: str, foreign: Any) -> tuple[str, str, str]:
    """(threat, the target's oracle, the references' oracle), defaults resolved and checked."""
    image_model = kind == "ann"
    threat = config.threat or ("membrane" if image_model else "counts")
    if image_model and threat == "counts":
        raise NmprivacyError("the counts threat does not apply to an ann target (n/a: it has no output spikes): use --threat membrane (its logits) or label")
    loihi_target = kind in LOIHI_KINDS if foreign is None else (foreign.netx is not None or foreign.float_model is not None or kind == "snn-lava")
    oracle = config.oracle or ("emulation" if loihi_target and not image_model else "float")
    if image_model and oracle != "float":
        raise NmprivacyError(f"the {oracle} oracle does not apply to an ann target (n/a: it has no Loihi form): use --oracle float")
    if foreign is not None and oracle == "float" and foreign.netx is not None:
        raise NmprivacyError(f"{config.target} is a NetX file, which has no float model: use --oracle emulation or lava")
    # the references of a file are observed as its target is, but through the bit-exact emulation instead of Lava (the Lava check shows they agree)
    reference_oracle = "emulation" if (foreign is not None and oracle == "lava") else oracle
    return threat, oracle, reference_oracle


def _records(config: MiaConfig, name: str, n_train: int, n_test: int, file_target: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(``[pool]`` in the training split?, audited pool indices, the Z population pool indices)."""
    in_train = np.arange(n_train + n_test) < n_train
    if n_test < 2:
        raise NmprivacyError(f"'{name}' has {n_test} test records: population records need at least 2 (raise --limit-test)")
    z = int(config.population) if config.population is not None else default_population(n_train + n_test, n_test, file_target)
    if z > n_test // 2:
        raise NmprivacyError(f"--population {z} exceeds half the test split ({n_test} records): lower it or raise --limit-test")
    rng = np.random.default_rng(config.seed)
    population = np.sort(n_train + rng.permutation(n_test)[:z])
    audited = np.setdiff1d(np.arange(n_train + n_test), population)
    if audited.size < 4:
        raise NmprivacyError(f"only {audited.size} records to audit: raise --limit-train / --limit-test")
    return in_train, audited, population
