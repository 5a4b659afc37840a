"""Rate encoding and the model-input helper for both domains."""

from __future__ import annotations

import pytest
import torch

from nmprivacy.data.events import fit_length
from nmprivacy.encoding import rate_encode, to_spikes
from nmprivacy.errors import NmprivacyError


def test_rate_matches_intensity() -> None:
    levels = torch.tensor([0.0, 0.1, 0.25, 0.5, 0.9, 1.0])
    images = levels.view(1, 1, 1, -1).expand(64, 1, 4, -1).contiguous()  # [64, 1, 4, 6]
    g = torch.Generator().manual_seed(0)
    s = rate_encode(images, steps=100, generator=g)
    assert s.shape == (100, 64, 1, 4, 6) and s.dtype == torch.float32
    assert set(torch.unique(s).tolist()) <= {0.0, 1.0}
    rate = s.mean(dim=(0, 1, 2, 3))  # 25600 draws per level
    sigma = (levels * (1 - levels) / 25600).sqrt()
    assert torch.all((rate - levels).abs() <= 4 * sigma + 1e-6), (rate, levels)
    assert rate[0] == 0 and rate[-1] == 1


def test_rate_encode_seeded_reproducible() -> None:
    x = torch.rand(3, 1, 5, 5)
    a = rate_encode(x, 25, torch.Generator().manual_seed(7))
    b = rate_encode(x, 25, torch.Generator().manual_seed(7))
    c = rate_encode(x, 25, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_rate_encode_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rate_encode(torch.full((1, 1, 2, 2), 2.0))
    with pytest.raises(ValueError, match="B, C, H, W"):
        rate_encode(torch.rand(2, 2))
    with pytest.raises(NmprivacyError):
        rate_encode(torch.rand(1, 1, 2, 2), steps=0)


def test_to_spikes_events_time_first_cut_and_pad() -> None:
    x = torch.randint(0, 2, (3, 7, 1, 4, 4), dtype=torch.uint8)  # [B, T, C, H, W]
    s = to_spikes(x, "events", 7)
    assert s.shape == (7, 3, 1, 4, 4) and s.dtype == torch.float32
    assert torch.equal(s[5, 2], x[2, 5].float())
    assert torch.equal(to_spikes(x, "events", 4), s[:4])
    padded = to_spikes(x, "events", 10)
    assert padded.shape[0] == 10 and padded[7:].sum() == 0 and torch.equal(padded[:7], s)
    assert torch.equal(to_spikes(x, "events", None), s)
    assert fit_length(torch.ones(2, 3), 4).sum() == 6 and fit_length(torch.ones(2, 3), 4).shape == (4, 3)


def test_to_spikes_images() -> None:
    x = torch.rand(2, 1, 3, 3)
    a = to_spikes(x, "image", 12, torch.Generator().manual_seed(1))
    assert torch.equal(a, rate_encode(x, 12, torch.Generator().manual_seed(1)))
    with pytest.raises(NmprivacyError, match="time steps"):
        to_spikes(x, "image", None)
    with pytest.raises(ValueError, match="unknown domain"):
        to_spikes(x, "audio", 3)  # type: ignore[arg-type]
