"""docs/method.md's tables agree with the code: attack settings (§5.6) with ``nmprivacy.presets``,
published figures (§7) with ``nmprivacy.evaluation.paper``."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from nmprivacy.evaluation.paper import PAPER_ACCURACY, PAPER_ATTACKS
from nmprivacy.presets import PAPER

METHOD = Path(__file__).resolve().parents[1] / "docs" / "method.md"
METRIC_COLUMNS = {"attack acc": "attack_acc", "top-3": "top3_acc", "avg conf": "avg_conf", "DAA": "daa"}


def section(number: str) -> str:
    """The text of section ``number`` ("5.6", "7") up to the next heading of the same or a higher level."""
    text = METHOD.read_text(encoding="utf-8")
    level = "##" if "." not in number else "###"
    match = re.search(rf"^{level} {re.escape(number)}[. ].*?$(.*?)(?=^#{{2,{len(level)}}} |\Z)", text, re.M | re.S)
    assert match, f"docs/method.md has no section {number}"
    return match.group(1)


def tables(text: str) -> list[list[list[str]]]:
    """Every markdown table of ``text`` as rows of stripped cells (header first, separator dropped)."""
    out: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r"-+", c) for c in cells):
                current.append(cells)
        elif current:
            out.append(current)
            current = []
    return out


def percent(cell: str) -> tuple[float, float | None]:
    """``"71.27 ± 2.25"`` -> (0.7127, 0.0225); ``"100"`` -> (1.0, None)."""
    parts = [p.strip() for p in cell.split("±")]
    value = float(parts[0]) / 100
    return value, (float(parts[1]) / 100 if len(parts) > 1 else None)


def setting(cell: str) -> float | bool:
    """A settings-table cell as a number or a yes/no flag."""
    if cell in ("yes", "no"):
        return cell == "yes"
    return float(cell)


def test_attack_settings_table_matches_presets() -> None:
    (table,) = tables(section("5.6"))
    families = table[0][1:]
    assert sorted(families) == sorted(PAPER), "§5.6 needs one column per preset family"
    checked = 0
    for row in table[1:]:
        path = re.search(r"`([\w.]+)`", row[0])
        assert path, f"§5.6 row {row[0]!r} does not name its Preset field"
        for family, cell in zip(families, row[1:]):
            preset = PAPER[family]
            if cell == "–":
                assert path.group(1).startswith("mi_face.") and not preset.ann_baseline, f"{family} {path.group(1)}: '–' only where there is no ANN"
                continue
            value: object = preset
            for name in path.group(1).split("."):
                value = getattr(value, name)
            expected = setting(cell)
            if isinstance(expected, bool):
                assert value is expected, f"{family} {path.group(1)}: doc {cell}, presets {value}"
            else:
                assert math.isclose(float(value), expected, rel_tol=1e-12), f"{family} {path.group(1)}: doc {cell}, presets {value}"
            checked += 1
    assert checked >= 50


def test_accuracy_table_matches_paper_module() -> None:
    (table,) = tables(section("7.1"))
    keys = [re.search(r"`(\w+)`", h).group(1) for h in table[0][1:]]  # type: ignore[union-attr]
    doc = {}
    for row in table[1:]:
        doc[row[0]] = {k: percent(c)[0] for k, c in zip(keys, row[1:]) if c != "–"}
    assert doc.keys() == PAPER_ACCURACY.keys()
    for family, values in PAPER_ACCURACY.items():
        assert doc[family].keys() == values.keys(), family
        for key, value in values.items():
            assert math.isclose(doc[family][key], value, abs_tol=1e-9), f"{family} {key}: doc {doc[family][key]}, code {value}"


def test_attack_figures_table_matches_paper_module() -> None:
    (table,) = tables(section("7.2"))
    header = table[0]
    columns = {METRIC_COLUMNS[h]: i for i, h in enumerate(header) if h in METRIC_COLUMNS}
    assert len(columns) == 4
    doc = {(row[0], row[1]): {m: percent(row[i]) for m, i in columns.items()} for row in table[1:]}
    code = {(family, attack): metrics for family, attacks in PAPER_ATTACKS.items() for attack, metrics in attacks.items()}
    assert doc.keys() == code.keys()
    for key, metrics in code.items():
        for metric, (value, std) in metrics.items():
            d_value, d_std = doc[key][metric]
            assert math.isclose(d_value, value, abs_tol=1e-9), f"{key} {metric}: doc {d_value}, code {value}"
            assert (d_std is None) == (std is None) and (std is None or math.isclose(d_std, std, abs_tol=1e-9)), f"{key} {metric} ±"


@pytest.mark.parametrize("number", ["1", "2", "3", "4", "5", "6", "7", "8", "9"])
def test_every_cited_section_exists(number: str) -> None:
    assert section(number).strip()


def test_default_variant_table_matches_presets() -> None:
    """§5.7 lists, per family, every attack setting in which ``default`` differs from ``paper``
    ("–": same as §5.6), with the value ``attack_variant`` gives."""
    from dataclasses import asdict

    from nmprivacy.presets import FAMILY, attack_variant, preset_for

    (table,) = [t for t in tables(section("5.7")) if "`" in t[1][0]][:1]
    families = table[0][1:]
    assert sorted(families) == sorted(PAPER), "§5.7 needs one column per preset family"
    dataset = {family: name for name, family in reversed(list(FAMILY.items()))}
    listed: set[str] = set()
    for row in table[1:]:
        path = re.search(r"`(bl_v[12]\.\w+)`", row[0])
        assert path, f"§5.7 row {row[0]!r} does not name its bl_v1/bl_v2 field"
        group, name = path.group(1).split(".")
        listed.add(path.group(1))
        for family, cell in zip(families, row[1:]):
            paper = getattr(getattr(preset_for(dataset[family]), group), name)
            default = getattr(getattr(attack_variant(dataset[family], preset_for(dataset[family]), "default"), group), name)
            if cell == "–":
                assert default == paper, f"§5.7 says {family} {path.group(1)} stays {paper}, default is {default}"
            elif isinstance(default, str):
                assert default == cell, f"§5.7 {family} {path.group(1)}: doc {cell}, default {default}"
            else:
                assert math.isclose(float(default), float(cell)), f"§5.7 {family} {path.group(1)}: doc {cell}, default {default}"
    for family in families:
        paper, default = preset_for(dataset[family]), attack_variant(dataset[family], preset_for(dataset[family]), "default")
        for group in ("bl_v1", "bl_v2"):
            for name, value in asdict(getattr(default, group)).items():
                if value != asdict(getattr(paper, group))[name]:
                    assert f"{group}.{name}" in listed, f"§5.7 does not list {group}.{name}, which default changes for {family}"
