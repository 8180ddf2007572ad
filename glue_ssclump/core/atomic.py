"""Atomic file writes: a failed or interrupted write never leaves a partial output.

Write beside the target under a hidden temporary name, then rename over it. A rename
within one directory is atomic on POSIX and Windows, so readers see either the previous
file (with the manual labels in it) or the complete new one, never half of one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "write_atomic"]


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``.

    The temporary name keeps the suffix, so writers that choose a format by extension
    (astropy's ``Table.write``, ``HDUList.writeto``) behave as for the target. On any
    exception the temporary file is removed and ``path`` is left untouched.

    Parameters
    ----------
    path : str or Path
        The file to (re)place. Its folder is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` and move ``tmp`` onto ``path`` only if it returned normally."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)
