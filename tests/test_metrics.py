"""Attack metrics on hand-made confidence tables (docs/method.md §6), incl. DAA corner cases."""

from __future__ import annotations

import pytest
import torch

from nmprivacy.evaluation.metrics import all_metrics, attack_accuracy, average_confidence, daa, diagonal_topk_hits, top_k_accuracy
from nmprivacy.evaluation.scoring import coerce_reconstructions, scored_form, square, summarize
from nmprivacy.errors import NmprivacyError


def test_perfect_attack() -> None:
    conf = torch.eye(4) * 0.7 + 0.075
    assert all_metrics(conf) == pytest.approx({"attack_acc": 1.0, "top3_acc": 1.0, "avg_conf": 0.775, "daa": 1.0})


def test_known_table() -> None:
    # rows = reconstruction of class i; argmax per row: 0, 0, 2, 1
    conf = torch.tensor(
        [
            [0.60, 0.20, 0.10, 0.10],
            [0.50, 0.30, 0.15, 0.05],
            [0.10, 0.20, 0.40, 0.30],
            [0.05, 0.60, 0.25, 0.10],
        ]
    )
    assert attack_accuracy(conf) == pytest.approx(2 / 4)
    # row 3: class 3 (0.10) is 3rd largest (0.60, 0.25 above it) -> hit; all other rows hit too
    assert top_k_accuracy(conf, 3) == pytest.approx(1.0)
    assert top_k_accuracy(conf, 2) == pytest.approx(3 / 4)
    assert average_confidence(conf) == pytest.approx((0.6 + 0.3 + 0.4 + 0.1) / 4)
    # columns: argmax_i col0 = 0 (0.60) ok; col1 = 3 (0.60) no; col2 = 2 (0.40) ok; col3 = 2 (0.30) no
    assert daa(conf) == pytest.approx(2 / 4)


def test_daa_class_never_argmax_and_one_dominating_reconstruction() -> None:
    # reconstruction 0 is the most likely for every column: only column 0 counts
    conf = torch.tensor([[0.5, 0.4, 0.6], [0.1, 0.3, 0.2], [0.2, 0.2, 0.3]])
    assert daa(conf) == pytest.approx(1 / 3)
    # class 1 is never any row's argmax; the attack accuracy only credits rows 0 and 2
    conf2 = torch.tensor([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert attack_accuracy(conf2) == pytest.approx(2 / 3)
    assert daa(conf2) == pytest.approx(1.0)  # column 1's max is still row 1 (0.2 > 0.1)


def test_ties_count_as_expected_random_tie_break() -> None:
    uniform = torch.full((4, 4), 0.25)
    assert attack_accuracy(uniform) == pytest.approx(1 / 4)
    assert top_k_accuracy(uniform, 3) == pytest.approx(3 / 4)
    assert daa(uniform) == pytest.approx(1 / 4)
    # diagonal tied with one other entry at the top: half a hit
    conf = torch.tensor([[0.4, 0.4, 0.2], [0.1, 0.8, 0.1], [0.0, 0.3, 0.7]])
    assert diagonal_topk_hits(conf, 1).tolist() == pytest.approx([0.5, 1.0, 1.0])
    # column 1: rows 0 (0.4), 1 (0.8), 2 (0.3) -> row 1 wins; column 0: row 0 0.4 wins
    assert daa(conf) == pytest.approx(1.0)


def test_non_square_is_rejected() -> None:
    with pytest.raises(ValueError):
        attack_accuracy(torch.ones(2, 3))
    with pytest.raises(NmprivacyError):
        square(torch.ones(2, 3), [0, 0])
    torch.testing.assert_close(square(torch.arange(6.0).reshape(2, 3), [2, 0]), torch.tensor([[2.0, 0.0], [5.0, 3.0]]))


def test_summarize_means_and_spreads() -> None:
    table = [
        [{"attack_acc": 1.0}, {"attack_acc": 0.5}],
        [{"attack_acc": 0.5}, {"attack_acc": 0.0}],
    ]
    out = summarize(table)
    assert out["attack_acc"] == pytest.approx(0.5)
    assert out["attack_acc_std"] == pytest.approx(torch.tensor([0.75, 0.25]).std().item())
    assert out["attack_acc_evaluator_std"] == pytest.approx(torch.tensor([0.75, 0.25]).std().item())
    assert "attack_acc_std" not in summarize(table[:1])


def test_reconstruction_forms() -> None:
    g = torch.Generator().manual_seed(0)
    images = coerce_reconstructions(torch.rand(3, 1, 16), (1, 4, 4), 3)
    assert images.shape == (3, 1, 4, 4)
    spikes = coerce_reconstructions(torch.rand(3, 5, 1, 16), (1, 4, 4), 3)
    assert spikes.shape == (3, 5, 1, 4, 4)
    sampled = scored_form(spikes, (1, 4, 4), g)
    assert bool(((sampled == 0) | (sampled == 1)).all())
    scaled = scored_form(images * 3 - 1, (1, 4, 4), g)
    assert float(scaled.amin(dim=(1, 2, 3)).max()) == 0.0 and float(scaled.amax(dim=(1, 2, 3)).min()) == pytest.approx(1.0)
    with pytest.raises(NmprivacyError, match="per class"):
        coerce_reconstructions(torch.rand(3, 7), (1, 4, 4), 3)
    with pytest.raises(NmprivacyError, match="first axis"):
        coerce_reconstructions(torch.rand(2, 16), (1, 4, 4), 3)


class _Recorder(torch.nn.Module):
    """Evaluator stub: logits = per-class mean of the input it receives; records that input."""

    def __init__(self, domain: str) -> None:
        super().__init__()
        from nmprivacy.models.base import ModelInfo

        self.info = ModelInfo("stub", domain, (1, 2, 2), 4)
        self.seen: list[torch.Tensor] = []

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x)
        flat = x.float().mean(dim=0) if self.info.domain == "spikes" else x.float()  # [B, 1, 2, 2]
        return torch.softmax(flat.reshape(flat.shape[0], 4) * 10, dim=-1)

    def eval(self):  # type: ignore[override]
        return self


def test_each_evaluator_gets_its_input_form() -> None:
    from nmprivacy.evaluation.scoring import confidence_matrix

    g = torch.Generator().manual_seed(0)
    spikes = torch.zeros(4, 5, 1, 2, 2)  # [K, T, C, H, W]: class i fires pixel i in 3 of 5 steps
    for i in range(4):
        spikes[i, :3, 0, i // 2, i % 2] = 1
    image_eval = _Recorder("image")
    conf = confidence_matrix(image_eval, spikes, g)  # type: ignore[arg-type]
    assert image_eval.seen[0].shape == (4, 1, 2, 2)
    torch.testing.assert_close(image_eval.seen[0], spikes.mean(dim=1))  # rate-decoded
    assert attack_accuracy(conf) == 1.0
    spiking_eval = _Recorder("spikes")
    images = spikes.mean(dim=1)  # [K, C, H, W]
    conf2 = confidence_matrix(spiking_eval, images, g, steps=400)  # type: ignore[arg-type]
    seen = spiking_eval.seen[0]
    assert seen.shape == (400, 4, 1, 2, 2) and bool(((seen == 0) | (seen == 1)).all())
    torch.testing.assert_close(seen.mean(dim=0), images, atol=0.1, rtol=0)  # rate-encoded
    assert attack_accuracy(conf2) == 1.0
    confidence_matrix(spiking_eval, spikes, g)  # type: ignore[arg-type]
    torch.testing.assert_close(spiking_eval.seen[1], spikes.transpose(0, 1))  # spikes as they are, time first
