"""What a membership attacker sees of a model, by threat level, and the signals computed from it
(docs/method.md §9.2).

A record is *queried* ``Q`` times: static images are rate-encoded anew for each query (seeded by
the record's chunk and the query index, so every model sees the same ``Q`` spike trains of a
record); event records and image models (``ann``) are deterministic and have ``Q = 1``. What a
model answers is kept as ``Observations``:

- ``logp`` float32 ``[M, Q, C]``: the log of the model's read-out probabilities (spiking:
  ``log((1/T) sum_t softmax(U_t))`` of the output membrane, computed in log space; image models:
  ``log_softmax`` of the logits);
- ``counts`` int16 ``[M, Q, C]``: output spike counts over the T steps (None for image models);
- ``pred`` int64 ``[M]``: the read-out's predicted class on query 0 (for train/test accuracy).

``attacker_view(obs, threat)`` turns them into the log class probabilities the attack works with,
``[M, Q', C]`` float64, for the threat levels of ``nmprivacy.attacks.query_oracle``:

- ``counts`` (the chip's observable, default): ``log_softmax(counts / temperature)`` per query,
  ``Q' = Q``. Counts are integers, so classes tie; the softmax gives tied classes equal
  probability (no tie is broken), and ``temperature`` (default ``COUNT_TEMPERATURE`` = 1 spike)
  sets how much one spike more is worth;
- ``label`` (top-1 only): the label of each query (the class with most output spikes, ties to
  the lowest index, none when no output neuron spiked; image models: the argmax), pooled over
  the ``Q`` queries as the smoothed empirical distribution ``(n_c + a) / (Q + C a)`` with
  ``a = LABEL_SMOOTHING`` (a query without answer adds ``1/C`` to every ``n_c``), ``Q' = 1``;
- ``membrane`` (white box, float): the read-out ``logp`` itself (image models: their logits).

The membrane is never used for another threat level. Signals: ``logit_confidence`` is LiRA's
``phi = log(p_y / (1 - p_y))`` computed as ``log p_y - logsumexp_{j != y} log p_j`` (finite for
``p_y`` as close to 0 or 1 as floating point holds), ``true_class_probability`` is ``p_y``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from nmprivacy.attacks.query_oracle import THREATS, check_threat, spike_labels
from nmprivacy.errors import NmprivacyError
from nmprivacy.models.base import TargetModel

COUNT_TEMPERATURE = 1.0  # spikes per nat of the counts' softmax
LABEL_SMOOTHING = 0.5  # pseudo-count per class of the label threat's empirical distribution (Krichevsky-Trofimov)
CHUNK = 256  # records encoded together with one generator: fixes which spike train a record gets

__all__ = ["THREATS", "Observations", "attacker_view", "check_threat", "encode_queries", "logit_confidence", "model_outputs",
           "observe", "readout_logprob", "true_class_logprob", "true_class_probability"]


@dataclass(frozen=True)
class Observations:
    """What one model answered for ``M`` records x ``Q`` queries (see the module docstring)."""

    logp: torch.Tensor
    counts: torch.Tensor | None
    pred: torch.Tensor

    def __post_init__(self) -> None:
        if self.logp.dim() != 3 or (self.counts is not None and tuple(self.counts.shape) != tuple(self.logp.shape)):
            raise ValueError(f"observations need logp [M, Q, C] and counts of the same shape, got {tuple(self.logp.shape)}")

    @property
    def records(self) -> int:
        return int(self.logp.shape[0])

    def silent_share(self) -> float | None:
        """Fraction of (record, query) answers without a single output spike (None without counts):
        what the counts threat sees of them is nothing but a tie."""
        return None if self.counts is None else float((self.counts.sum(dim=-1) == 0).double().mean())

    def take(self, index: np.ndarray | torch.Tensor) -> "Observations":
        """The observations of the records ``index``."""
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return Observations(self.logp[idx], None if self.counts is None else self.counts[idx], self.pred[idx])


def readout_logprob(membrane: torch.Tensor) -> torch.Tensor:
    """``log`` of ``spike_readout(membrane)`` (``[T, B, C]`` -> ``[B, C]``), computed in log space:
    ``logsumexp_t(log_softmax(U_t)) - log T``."""
    t = membrane.shape[0]
    return torch.logsumexp(torch.log_softmax(membrane.to(torch.float64), dim=-1), dim=0) - math.log(t)


def output_threshold(model: TargetModel) -> float | None:
    """The output neurons' threshold in read-out units (``forward``'s membrane), or None when the
    model does not say it: from its LIF description, else its config's ``threshold``."""
    layers = model.lif_layers() if callable(getattr(model, "lif_layers", None)) else None
    if layers:
        return float(layers[-1].threshold) / float(layers[-1].membrane_scale)
    value = getattr(getattr(model, "config", None), "threshold", None)
    return float(value) if isinstance(value, (int, float)) else None


@torch.no_grad()
def model_outputs(model: TargetModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(``logp`` ``[B, C]``, output spike ``counts`` ``[B, C]`` or None) of ``model`` for one batch
    in its input layout (spikes ``[T, B, ...]`` or images ``[B, ...]``).

    A network description (``NetworkModel``: a NetX file's bit-exact emulation) gives its output
    spikes as it computes them; any other spiking model's output neuron spikes where its
    pre-reset membrane exceeds its threshold (``output_threshold``, the neurons' own rule)."""
    if model.info.domain == "image":
        return torch.log_softmax(model(x).to(torch.float64), dim=-1), None
    from nmprivacy.models.network_model import NetworkModel

    if isinstance(model, NetworkModel):
        from nmprivacy.network import loihi

        spikes, volt = model.run(x)
        unit = loihi.VOLTAGE_UNIT * model.network().layers[-1].scale if model.loihi else 1.0
        membrane = (volt / unit).to(torch.float32)  # as NetworkModel.forward
        return readout_logprob(membrane), spikes[-1].sum(dim=0).to(torch.int64)
    membrane = model(x)
    threshold = output_threshold(model)
    counts = None if threshold is None else (membrane > threshold).sum(dim=0).to(torch.int64)
    return readout_logprob(membrane), counts


def engine_answer(model: TargetModel):
    """An ``observe`` answer function computing the exact Loihi fixed-point forward of a
    ``NetworkModel`` through the attack engine (``EmulationOracle``'s ``"engine"`` backend: the
    same integers as ``NetworkModel.run``, tens of times faster), or None where that backend does
    not apply (no LIF-layer description, an output scale that is no power of two). Non-binary
    input batches (graded event counts) fall back to ``model_outputs``."""
    from nmprivacy.attacks.query_oracle import EmulationOracle

    try:
        oracle = EmulationOracle(model, "membrane")
    except NmprivacyError:
        return None
    if oracle.backend != "engine":
        return None

    def answer(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not bool(((x == 0) | (x == 1)).all()):
            return model_outputs(model, x)
        membrane = oracle(x.transpose(0, 1)).membrane  # [B, T, C], read-out units
        counts = (membrane > oracle.spike_threshold).sum(dim=1).to(torch.int64)  # the neurons' own spike rule, as the oracle's counts
        return readout_logprob(membrane.transpose(0, 1)), counts

    return answer


def encode_queries(x: torch.Tensor, domain: str, steps: int | None, seed: int, query: int, chunk: int) -> torch.Tensor:
    """Spikes ``[T, B, ...]`` of query ``query`` for the records of chunk ``chunk`` (images are
    rate-encoded with a generator seeded by (seed, query, chunk); events are returned as they are)."""
    from nmprivacy.encoding import to_spikes

    gen = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(query) * 10_007 + int(chunk)) & 0x7FFFFFFFFFFF)
    return to_spikes(x, domain, steps, gen)  # type: ignore[arg-type]


def queries_for(model_domain: str, data_domain: str, queries: int) -> int:
    """``Q``: ``queries`` for spiking models on images (each query a fresh rate encoding), else 1."""
    return int(queries) if model_domain == "spikes" and data_domain == "image" else 1


@torch.no_grad()
def observe(model: TargetModel, x: torch.Tensor, data_domain: str, steps: int | None, queries: int, seed: int,
            answer=None, progress: bool = False) -> Observations:
    """``Observations`` of ``model`` for the records ``x`` (a split's layout: images
    ``[M, C, H, W]`` or events ``[M, T, C, H, W]``). ``answer(spikes [T, B, ...]) -> (logp, counts)``
    replaces the model's own forward (an emulation or Lava); default ``model_outputs``."""
    from nmprivacy.progress import bar

    from nmprivacy.models.network_model import NetworkModel

    if answer is None and isinstance(model, NetworkModel):
        answer = engine_answer(model)
    answer = answer or (lambda batch: model_outputs(model, batch))
    model.eval()
    q_total = queries_for(model.info.domain, data_domain, queries)
    logps, counts, preds = [], [], []
    for c, start in enumerate(bar(range(0, int(x.shape[0]), CHUNK), quiet=not progress, desc="observe", unit="chunk", leave=False)):
        xb = x[start : start + CHUNK]
        lp_q, ct_q = [], []
        for q in range(q_total):
            inputs = xb.to(torch.float32) if model.info.domain == "image" else encode_queries(xb, data_domain, steps, seed, q, c)
            lp, ct = answer(inputs)
            lp_q.append(lp.to(torch.float32))
            ct_q.append(ct)
        logps.append(torch.stack(lp_q, dim=1))
        preds.append(lp_q[0].argmax(dim=1))
        if all(ct is not None for ct in ct_q):
            counts.append(torch.stack(ct_q, dim=1).to(torch.int16))
    logp = torch.cat(logps)
    return Observations(logp, torch.cat(counts) if len(counts) == len(logps) else None, torch.cat(preds))


def attacker_view(obs: Observations, threat: str, temperature: float = COUNT_TEMPERATURE, smoothing: float = LABEL_SMOOTHING) -> np.ndarray:
    """The log class probabilities ``[M, Q', C]`` (float64) the attacker sees at ``threat``
    (module docstring); a one-line error when the model cannot show it (counts of an image model)."""
    threat = check_threat(threat)
    if temperature <= 0 or smoothing <= 0:
        raise NmprivacyError("the count temperature and the label smoothing must be > 0")
    c = int(obs.logp.shape[-1])
    if threat == "membrane":
        return obs.logp.to(torch.float64).numpy()
    if threat == "counts":
        if obs.counts is None:
            raise NmprivacyError("this model shows no output spikes, so the counts threat does not apply (n/a): use --threat membrane or label")
        return torch.log_softmax(obs.counts.to(torch.float64) / temperature, dim=-1).numpy()
    m, q = obs.logp.shape[:2]
    labels = spike_labels(obs.counts.reshape(m * q, c).to(torch.int64)) if obs.counts is not None else obs.logp.reshape(m * q, c).argmax(dim=1)
    labels = labels.reshape(m, q)
    hist = torch.zeros(m, c, dtype=torch.float64)
    answered = labels >= 0
    hist.scatter_add_(1, labels.clamp(min=0), answered.to(torch.float64))
    hist += (~answered).sum(dim=1, keepdim=True).to(torch.float64) / c  # no answer: no class favoured
    return torch.log((hist + smoothing) / (q + c * smoothing)).unsqueeze(1).numpy()


def _true_and_rest(logq: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(``log p_y`` ``[..., Q]``, ``logsumexp_{j != y} log p_j`` ``[..., Q]``) for ``logq``
    ``[..., M, Q, C]`` and ``labels`` ``[M]``."""
    from scipy.special import logsumexp

    y = np.asarray(labels, dtype=np.int64)
    onehot = np.zeros(logq.shape[-3:-1] + (logq.shape[-1],), dtype=bool)
    onehot[np.arange(y.size), :, y] = True
    true = np.where(onehot, logq, 0.0).sum(axis=-1)
    rest = logsumexp(np.where(onehot, -np.inf, logq), axis=-1)
    return true, rest


def logit_confidence(logq: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """LiRA's signal ``phi = log(p_y / (1 - p_y))`` ``[..., M, Q]`` of log class probabilities
    ``[..., M, Q, C]`` (they need not sum to one: ``phi = log p_y - log sum_{j != y} p_j``)."""
    true, rest = _true_and_rest(logq, labels)
    return true - rest


def true_class_logprob(logq: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``log p_y`` ``[..., M, Q]``, normalised over the classes (minus the cross-entropy)."""
    from scipy.special import logsumexp

    true, _ = _true_and_rest(logq, labels)
    return true - logsumexp(logq, axis=-1)


def true_class_probability(logq: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``p_y`` ``[..., M, Q]``, normalised over the classes."""
    return np.exp(true_class_logprob(logq, labels))
