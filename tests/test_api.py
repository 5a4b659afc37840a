"""The Python API: the README's example runs as written, and the API loads foreign modules."""

from __future__ import annotations

import re
from pathlib import Path

import nir
import numpy as np
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    section = text[text.index("**Python.**"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def small_graph() -> nir.NIRGraph:
    rng = np.random.default_rng(0)
    return nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([16])),
        nir.Affine(weight=rng.normal(0.1, 0.5, (12, 16)), bias=np.zeros(12)),
        nir.LIF(tau=np.full(12, 0.01), r=np.full(12, 10.0), v_leak=np.zeros(12), v_threshold=np.ones(12), v_reset=np.zeros(12)),
        nir.Affine(weight=rng.normal(0.0, 0.5, (4, 12)), bias=np.zeros(4)),
        nir.LIF(tau=np.full(4, 0.01), r=np.full(4, 10.0), v_leak=np.zeros(4), v_threshold=np.ones(4), v_reset=np.zeros(4)),
        nir.Output(output_type=np.array([4])),
    )


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    nir.write("net.nir", small_graph())
    exec(compile(readme_example(), "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "torch.Size([2, 20, 16])" in printed and "torch.Size([2, 20, 4])" in printed
    assert (tmp_path / "net.net").is_file()


def test_api_takes_norse_and_snntorch_modules_and_stays_light():
    import subprocess
    import sys

    import norse.torch as norse
    import snntorch as snn

    import nmprivacy as nmp

    norse_model = norse.SequentialState(torch.nn.Linear(16, 12, bias=False), norse.LIFBoxCell(), torch.nn.Linear(12, 4, bias=False), norse.LIBoxCell())
    target = nmp.load(norse_model, input_shape=(16,))
    assert target.model.network().arithmetic == "loihi" and target.float_model.network().arithmetic == "float"
    assert target.meta["dt"] == 1e-3 and target.model.network().layers[0].neuron.v_decay == 410  # Norse's tau_mem_inv 100 at dt 1 ms
    snn_model = torch.nn.Sequential(torch.nn.Linear(16, 12), snn.Leaky(beta=0.9, init_hidden=True), torch.nn.Linear(12, 4), snn.Leaky(beta=0.8, init_hidden=True, output=True))
    model = nmp.load_model(snn_model, input_shape=(16,), steps=8)
    assert model.steps == 8 and any("subtract" in note for note in model.network().notes)  # snnTorch's default reset, reported
    inv = nmp.get_attack("bl-v1", nmp.BLv1Settings(iterations=2)).run(model, [0, 3])
    assert inv.reconstructions.shape == (2, 8, 16) and inv.config["oracle"] in ("fast-lif", "autograd")
    done = subprocess.run([sys.executable, "-c", "import sys, nmprivacy; print('torch' in sys.modules)"], capture_output=True, text=True)
    assert done.stdout.strip() == "False"  # `import nmprivacy` loads nothing heavy; names load on first use


def test_membership_inference_is_part_of_the_api(tmp_path):
    """``nmp.run_mia(nmp.MiaConfig(...))`` is ``nmprivacy.mia``'s and runs (a seconds-long smoke run)."""
    import nmprivacy as nmp
    from nmprivacy import mia

    assert nmp.run_mia is mia.run_mia and nmp.MiaConfig is mia.MiaConfig and {"run_mia", "MiaConfig"} <= set(nmp.__all__)
    config = nmp.MiaConfig(dataset="digits", target="ann", budget="quick", hidden=8, attacks=("loss",), workers=0, bootstrap=0,
                           data_options={"limit_train": 60, "limit_test": 20}, cache=str(tmp_path / "cache"), out=str(tmp_path / "mia"))
    result = nmp.run_mia(config)
    assert result["references"] == 4 and 0 <= result["attacks"]["loss"]["auc"] <= 1 and (tmp_path / "mia" / "mia.json").is_file()
