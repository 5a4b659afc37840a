"""``nmprivacy audit --attacks ...,lira`` folds a membership-inference section (``nmprivacy mia``)
into the audit: ``results.json`` under ``membership``, the report's section, ``membership/``."""

from __future__ import annotations

import json
from pathlib import Path

from nmprivacy.cli import main


def test_audit_with_membership_attacks(tmp_path: Path, capsys) -> None:
    out = tmp_path / "audit"
    assert main(["audit", "--dataset", "digits", "--quick", "--set", "hidden=16", "--evaluators", "1", "--variant", "default", "--attacks", "bl-v1,lira,loss",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["attacks"]) == ["bl-v1"]
    mia = results["membership"]
    assert set(mia["attacks"]) == {"lira", "loss"} and mia == json.loads((out / "membership" / "mia.json").read_text())
    for a in mia["attacks"].values():
        assert 0.0 <= a["auc"] <= 1.0 and set(a["tpr_at_fpr"]) == {"0.001", "0.01"}
    assert "## Membership inference" in (out / "report.md").read_text() and (out / "membership" / "roc.png").is_file()
    printed = capsys.readouterr().out
    assert f"membership (threat {mia['threat']}): lira AUC {mia['attacks']['lira']['auc']:.3f}" in printed


def test_the_audit_summary_prints_the_membrane_check_of_silent_counts() -> None:
    """The console summary names the membership numbers and the membrane's cross-check (``silent_check``: runs made
    when it ran only on mostly silent counts, still read)."""
    from nmprivacy.commands.audit import summary_table

    def attack(auc: float) -> dict:
        return {"auc": auc, "tpr_at_fpr": {"0.001": 0.0, "0.01": auc / 50}}

    results = {"attacks": {}, "membership": {"threat": "counts", "attacks": {"lira": attack(0.5)},
                                             "silent_check": {"silent_output": 0.92, "attacks": {"lira": attack(0.6)}}}}
    lines = summary_table(results).splitlines()
    assert lines[1:] == ["membership (threat counts): lira AUC 0.500, TPR@1%FPR 1.00 %",
                         "membership through the membrane (outputs silent on 92 % of the queries): lira AUC 0.600, TPR@1%FPR 1.20 %"]
    results["membership"]["membrane_check"] = {**results["membership"].pop("silent_check"), "silent_output": 0.31}
    assert summary_table(results).splitlines()[2] == "membership through the membrane (outputs silent on 31 % of the queries): lira AUC 0.600, TPR@1%FPR 1.20 %"
    del results["membership"]["membrane_check"]
    assert summary_table(results).splitlines()[1:] == ["membership (threat counts): lira AUC 0.500, TPR@1%FPR 1.00 %"]
