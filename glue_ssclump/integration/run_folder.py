"""Where the train dialog saves its runs: one folder per catalogue, one per run.

Glue-aware (it reads where a catalogue or its cube was loaded from), Qt-free.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from glue.core.data import Data

from .pairing import META_SOURCE, cube_data_for

__all__ = ["default_output_dir", "new_run_dir", "slug"]


def slug(text: str) -> str:
    """``text`` as a file-name part: runs of other characters become one ``_``."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "catalogue"


def _writable(folder: Path) -> bool:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK)


def default_output_dir(catalog_data: Data, session: Any = None) -> Path:
    """Where models of a catalogue are saved unless the user chooses a folder.

    ``<source folder>/<catalogue>_ss3dclump`` next to the file the catalogue (or its
    cube) came from when that folder is writable; else next to the saved glue session;
    else ``<temp>/glue_ssclump/<catalogue>``.  Each run writes a ``run_<time>``
    folder inside.

    Parameters
    ----------
    catalog_data : glue Data
    session : glue Session, optional

    Returns
    -------
    pathlib.Path
    """
    name = f"{slug(catalog_data.label or 'catalogue')}_ss3dclump"
    sources = [getattr(getattr(catalog_data, "_load_log", None), "path", None)]
    cube = cube_data_for(catalog_data)
    if cube is not None:
        sources += [getattr(getattr(cube, "_load_log", None), "path", None),
                    cube.meta.get(META_SOURCE)]
    app = getattr(session, "application", None)
    sources.append(getattr(app, "_last_session_name", None))
    for source in sources:
        if isinstance(source, str) and source:
            folder = Path(source).expanduser().resolve().parent / name
            if _writable(folder):
                return folder
    return Path(tempfile.gettempdir()) / "glue_ssclump" / name


def new_run_dir(base: Path) -> Path:
    """A new ``run_<date>_<time>`` folder name inside ``base`` (not created)."""
    stamp = time.strftime("run_%Y%m%d_%H%M%S")
    path = base / stamp
    k = 1
    while path.exists():
        k += 1
        path = base / f"{stamp}_{k}"
    return path
