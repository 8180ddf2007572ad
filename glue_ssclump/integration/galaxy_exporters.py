"""Export galaxy clumps: the catalogue (any subset of it) and the boxes as DS9 regions.

The catalogue needs nothing new: the glue-ssclump catalogue exporters
(:mod:`glue_ssclump.integration.exporters`: FITS table / VOTable / ECSV with units) take
the clump catalogue or a subset of its rows, e.g. the "Galaxy clumps: clump" group; the
boxes (region geometries) and display-only columns are left out of the table.

What is added here is the clumps' boxes as a DS9 region file (:func:`ds9_regions`), one
``box`` per clump in DS9's 1-based image coordinates of the array as stored (for a
PNG/JPEG image row 1 is the top row), coloured by verdict, with the clump id and
verdict as text.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from glue.core.data import Data
from glue.core.subset import Subset

from ..core.atomic import write_atomic
from .exporters import _split
from .factory import KEY
from .galaxy_factory import CLUMPS_ROLE
from .galaxy_verdicts import GALAXY_COLOURS, verdicts_of
from .pairing import META_ROLE

__all__ = ["GALAXY_EXPORTERS", "ds9_regions", "export_ds9_regions"]


def ds9_regions(obj: Data | Subset) -> str:
    """The boxes of a clump catalogue (or of a subset of its rows) as DS9 region text.

    Parameters
    ----------
    obj : Data or Subset
        The galaxy clump catalogue, or a subset of it.

    Returns
    -------
    str
        A DS9 region file (``image`` coordinates: 1-based, the array as stored).

    Raises
    ------
    ValueError
        ``obj`` is not a galaxy clump catalogue.
    """
    data, mask = _split(obj)
    if data.meta.get(META_ROLE) != CLUMPS_ROLE:
        raise ValueError(f"{data.label!r} is not a galaxy clump catalogue; export DS9 "
                         "regions from the 'clumps' dataset of a galaxy image")
    rows = np.arange(data.size) if mask is None else np.flatnonzero(mask)
    x0, y0, x1, y1 = (np.asarray(data[name], dtype=float)[rows]
                      for name in ("x_min", "y_min", "x_max", "y_max"))
    ids = np.asarray(data[KEY])[rows]
    verdicts = verdicts_of(data)[rows]
    lines = ["# Region file format: DS9 version 4.1",
             f"# glue-ssclump galaxy clumps of {data.label}",
             'global color=green width=2 font="helvetica 10 normal roman"',
             "image"]
    for k in range(rows.size):
        # DS9 image pixel n spans n - 0.5 .. n + 0.5 with n = numpy index + 1.
        xc, yc = (x0[k] + x1[k]) / 2 + 1, (y0[k] + y1[k]) / 2 + 1
        colour = GALAXY_COLOURS.get(verdicts[k], "#777777")
        text = f"{int(ids[k])} {verdicts[k]}".strip()
        lines.append(f"box({xc:.2f},{yc:.2f},{x1[k] - x0[k]:.2f},{y1[k] - y0[k]:.2f},0) "
                     f"# color={colour} text={{{text}}}")
    return "\n".join(lines) + "\n"


def export_ds9_regions(obj: Data | Subset, path: str | os.PathLike) -> Path:
    """Write :func:`ds9_regions` of a clump catalogue (or subset) to ``path``, atomically."""
    text = ds9_regions(obj)
    return write_atomic(path, lambda tmp: Path(tmp).write_text(text))


def glue_export_ds9_regions(filename: str, data: Data | Subset,
                            components: Sequence[Any] | None = None) -> None:
    """glue exporter: galaxy clump boxes -> DS9 region file."""
    export_ds9_regions(data, filename)


#: (label, function, extensions) of the galaxy exporters registered with glue.
GALAXY_EXPORTERS = (
    ("Galaxy clump boxes: DS9 regions (glue-ssclump)", glue_export_ds9_regions, ["reg"]),
)
