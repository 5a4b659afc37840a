"""``nmprivacy audit --attacks ...,lira`` folds a membership-inference section (``nmprivacy mia``)
into the audit: ``results.json`` under ``membership``, the report's section, ``membership/``."""

from __future__ import annotations

import json
from pathlib import Path

from nmprivacy.cli import main


def test_audit_with_membership_attacks(tmp_path: Path) -> None:
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
