"""Dendrogram leaves (astrodendro) as clump candidates.

The paper's setting is Tmin = 3 rms and dT = 2 rms, so every leaf peaks at >= 5 rms.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..progress import Progress
from .base import Detector, Param, hookimpl

PARAMS = (
    Param("min_value", "3rms", "level", "lowest value in a structure (K, or e.g. '3rms')"),
    Param("min_delta", "2rms", "level", "a leaf must rise this far above its merge level"),
    Param("min_npix", 27, "int", "fewest voxels in a leaf"),
)


def run(data: np.ndarray, rms: float, params: dict[str, Any], progress: Progress) -> np.ndarray:
    """Label each dendrogram leaf (ids ordered by decreasing peak value)."""
    from astrodendro import Dendrogram

    work = np.where(np.isfinite(data), data, -np.inf).astype(np.float32, copy=False)
    progress.update(0.05, "dendrogram: computing tree")
    dendro = Dendrogram.compute(
        work,
        min_value=params["min_value"],
        min_delta=params["min_delta"],
        min_npix=params["min_npix"],
    )
    progress.update(0.8, "dendrogram: labelling leaves")
    leaves = sorted(dendro.leaves, key=lambda s: (-s.get_peak()[1], s.idx))
    mask = np.zeros(data.shape, dtype=np.int32)
    for i, leaf in enumerate(leaves, start=1):
        mask[leaf.indices(subtree=False)] = i
    progress.update(1.0)
    return mask


DETECTOR = Detector(
    name="dendrogram",
    description="astrodendro dendrogram leaves (Rosolowsky et al. 2008)",
    params=PARAMS,
    run=run,
    reference="Rosolowsky et al. 2008, ApJ 679, 1338",
)


@hookimpl
def ssclump_detectors() -> list[Detector]:
    return [DETECTOR]
