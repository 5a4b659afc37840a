"""Numbers as report text, one way everywhere (``report.md``, ``validation.md``, CLI summaries)."""

from __future__ import annotations


def percent(value: float | None, std: float | None = None, missing: str = "–", suffix: str = "") -> str:
    """A fraction as a percentage with two decimals (``"93.10"``, ``"93.10 ± 1.20"``), ``missing``
    for None, then ``suffix`` (e.g. ``" %"``)."""
    if value is None:
        return missing
    text = f"{100 * value:.2f} ± {100 * std:.2f}" if std is not None else f"{100 * value:.2f}"
    return text + suffix
