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

__all__ = ["load_session", "save_session"]


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
    path.write_text(text)
    return path


def load_session(path: str | os.PathLike) -> Any:
    """Restore what :func:`save_session` (or glue's *Save Session*) wrote.

    Returns
    -------
    DataCollection or glue Application
        The saved object (a ``GlueApplication`` session gives an application).
    """
    path = Path(path)
    with path.open() as fh:
        state = GlueUnSerializer.load(fh)
    return state.object("__main__")
