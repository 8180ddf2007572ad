"""Saving and restoring glue sessions that hold glue-ssclump datasets.

Nothing special is needed for glue's own session files: every object glue-ssclump
puts in a session is one glue already serialises (``Data`` with components, units,
``meta`` and key joins; ``JoinLink`` / ``ComponentLink`` whose functions are module
level and importable; ``ElementSubsetState`` / ``CategorySubsetState`` /
``InequalitySubsetState`` subset groups). A session saved *without* data stores, for
datasets made by the data factory, the file path, the factory and its keywords
(``glue.core.data_factories.helpers.LoadLog``); restoring re-runs the factory, which is
deterministic. Components added later (``p_clump``, ``verdict``, ``label``, a
``clump_id`` from :func:`~.factory.detect_in_data`) have no load log and are always
saved with their values.

These helpers do the same for a bare ``DataCollection`` (scripts, tests) and raise on
errors, whereas ``GlueApplication.save_session`` reports errors in a dialog.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from glue.core.state import GlueSerializer, GlueUnSerializer

from ..core.atomic import write_atomic
from ..core.errors import SSClumpError

__all__ = ["SessionError", "load_session", "save_session", "verified_collection"]


def save_session(obj: Any, path: str | os.PathLike, include_data: bool = True) -> Path:
    """Save a ``DataCollection`` (or a glue application) as a glue session file.

    Parameters
    ----------
    obj : DataCollection or glue Application
        What to save.
    path : str or path
        Output ``.glu`` file.
    include_data : bool
        Store component values; ``False`` stores how factory-loaded datasets were
        made (they are re-read, and re-detected, on restore).

    Returns
    -------
    Path
    """
    path = Path(path).resolve()
    text = GlueSerializer(obj, include_data=include_data, absolute_paths=True).dumps(indent=2)
    # atomic: a failed save never leaves a truncated session
    return write_atomic(path, lambda tmp: tmp.write_text(text))


class SessionError(SSClumpError):
    """A glue session file that cannot be restored (message: problem and fix)."""


def load_session(path: str | os.PathLike) -> Any:
    """Restore what :func:`save_session` (or glue's *Save Session*) wrote.

    Returns
    -------
    DataCollection or glue Application
        The saved object (a ``GlueApplication`` session gives an application).

    Raises
    ------
    SessionError
        The file is missing or not a session, or a dataset in it cannot be restored (a
        cube it refers to was moved or damaged); the message names the file to fix.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise SessionError(f"session file {path} {what}; give the .glu file glue saved")
    try:
        text = path.read_text(encoding="utf-8")
        state = GlueUnSerializer.loads(text)
    except Exception as exc:  # noqa: BLE001 - JSON errors, and glue's loader fails with
        # AttributeError / TypeError on JSON that is not a session
        raise SessionError(
            f"{path} is not a readable glue session ({_reason(exc)}); restore it from a "
            "backup or save the session again (File > Save Session)") from None
    try:
        return state.object("__main__")
    except SSClumpError as exc:
        raise SessionError(
            f"{path}: a dataset in the session cannot be restored: {exc} - put the file "
            "back, or edit its path in the .glu file (JSON text, key 'path')") from None
    except Exception as exc:  # noqa: BLE001 - glue's unserialiser raises any type for
        # a hand-edited file; the user needs to know which file, not glue's internals
        raise SessionError(
            f"{path} cannot be restored ({_reason(exc)}); the session was edited or "
            "damaged - restore it from a backup or save the session again") from None


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def verified_collection(cube: Any, mask: Any, catalog: Any, name: str = "cube"
                        ) -> tuple[Any, Any, Any]:
    """A data collection holding a detection and its verification, linked.

    The cube (intensity + ``clump_id``) and the catalogue become glue datasets joined
    on ``clump_id`` with the coordinate links; ``p_clump`` / ``verdict`` / ``label``
    columns of ``catalog`` (if any) go through
    :func:`~glue_ssclump.integration.writeback.write_verdicts`, so the verdict and label
    subset groups exist.

    Returns
    -------
    (DataCollection, cube Data, catalogue Data)
    """
    import numpy as np
    from glue.core import DataCollection

    from .factory import make_candidate_pair
    from .links import link_candidates
    from .writeback import write_verdicts

    results = [c for c in ("p_clump", "verdict", "label") if c in catalog.colnames]
    base = catalog.copy(copy_data=False)
    base.remove_columns(results)
    cube_data, catalog_data = make_candidate_pair(cube, mask, base, name)
    dc = DataCollection([cube_data, catalog_data])
    link_candidates(dc, cube_data, catalog_data)
    if results:
        write_verdicts(dc, catalog_data, **{c: np.asarray(catalog[c]) for c in results})
    return dc, cube_data, catalog_data
