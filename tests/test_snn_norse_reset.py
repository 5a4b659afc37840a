"""snn-norse's subtractive reset option (``SNNNorseConfig.reset``): dynamics, description, attacks, checkpoints."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from nmprivacy.attacks import get_attack
from nmprivacy.attacks.engine import make_oracle
from nmprivacy.attacks.oracle import AutogradOracle
from nmprivacy.models import checkpoint, config_from_dict
from nmprivacy.models.lif import LIFBox
from nmprivacy.models.snn_norse import SNNNorse, SNNNorseConfig
from nmprivacy.presets import BLv1Settings, BLv2Settings

SHAPE = (1, 4, 4)


def loop(current: torch.Tensor, leak: float, threshold: float, subtract: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The documented box-LIF step, written out: v <- leak v + (1 - leak) i, z = 1[v > th], then
    v <- v - th (subtract) or 0 (hard) where z."""
    v = torch.zeros_like(current[0])
    zs, vs = [], []
    for t in range(current.shape[0]):
        v = leak * v + (1 - leak) * current[t]
        z = (v > threshold).float()
        zs.append(z)
        vs.append(v)
        v = v - threshold * z if subtract else v * (1 - z)
    return torch.stack(zs), torch.stack(vs)


@pytest.mark.parametrize("reset", ["hard", "subtract"])
def test_lifbox_reset_follows_the_written_out_step(reset: str) -> None:
    torch.manual_seed(0)
    current = 4 * torch.rand(30, 3, 5)  # strong enough to spike several times
    z, v = LIFBox(0.7, 1.0, reset=reset)(current)
    z_ref, v_ref = loop(current, 0.7, 1.0, subtract=reset == "subtract")
    assert torch.equal(z, z_ref) and torch.allclose(v, v_ref, atol=1e-6)
    assert z.sum() > 10


def test_subtract_keeps_the_overshoot_that_hard_reset_drops() -> None:
    current = torch.full((6, 1, 1), 5.0)  # v: 1.5 (spike) -> hard: 0 then 1.5; subtract: 0.5 then 1.85
    z_hard, v_hard = LIFBox(0.7, 1.0, reset="hard")(current)
    z_sub, v_sub = LIFBox(0.7, 1.0, reset="subtract")(current)
    assert v_hard[1].item() == pytest.approx(1.5) and v_sub[1].item() == pytest.approx(0.7 * 0.5 + 1.5)
    assert z_sub.sum() >= z_hard.sum()
    with pytest.raises(ValueError, match="reset"):
        LIFBox(reset="zero")  # type: ignore[arg-type]


def test_subtracting_target_is_attacked_through_autograd() -> None:
    torch.manual_seed(0)
    model = SNNNorse(SNNNorseConfig(SHAPE, 3, hidden=12, reset="subtract")).freeze()
    assert model.info.reset == "subtract" and model.lif_layers() is None
    assert isinstance(make_oracle(model), AutogradOracle)
    hard = SNNNorse(SNNNorseConfig(SHAPE, 3, hidden=12)).freeze()
    assert hard.info.reset == "hard" and hard.lif_layers() is not None
    for name, settings in (("bl-v1", BLv1Settings(iterations=2)), ("bl-v2", BLv2Settings(iterations=2, population=3))):
        inv = get_attack(name, settings, steps=6).run(model, [0, 1, 2], seed=0)
        assert inv.reconstructions.shape == (3, 6, *SHAPE) and torch.isfinite(inv.reconstructions).all()


def test_reset_survives_a_checkpoint_and_old_configs_load_hard(tmp_path) -> None:
    torch.manual_seed(0)
    model = SNNNorse(SNNNorseConfig(SHAPE, 3, hidden=8, reset="subtract"))
    checkpoint.save(model, tmp_path / "ckpt")
    back = checkpoint.load(tmp_path / "ckpt", "snn-norse")
    assert back.config.reset == "subtract" and back.info.reset == "subtract"
    x = (torch.rand(5, 2, *SHAPE) < 0.5).float()
    assert torch.equal(back(x), model.eval()(x))
    old = {k: v for k, v in dataclasses.asdict(SNNNorseConfig(SHAPE, 3, hidden=8)).items() if k != "reset"}
    assert config_from_dict("snn-norse", old).reset == "hard"  # checkpoints written before the option
