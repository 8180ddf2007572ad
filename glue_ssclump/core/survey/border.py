"""The border rule: which clumps a tile owns, and which of them it can vouch for.

Ownership.  A clump belongs to the tile whose core (half-open box, global voxels) holds
its peak voxel.  The peak is the stable key (a centroid moves when a border cuts a
clump); the catalogue's peak is the first brightest voxel in (v, y, x) order, an order
that a window keeps.

Completeness.  Detection in a window reproduces the untiled segmentation of a clump
only if nothing the detector did to that clump depended on data outside the window.
Touching the window's outer face is the obvious failure, but not the only one: the
detectors share ground between neighbouring clumps (ClumpFind gives a merged region's
voxels to the nearest *peak* among the clumps it adjoins; FellWalker merges adjacent
clumps by their cols), so a clump that stays inside the window but adjoins a clump
cut by the face can differ too.  What is local is an *island*: a connected group of
voxels above the detector's lowest level.  Every built-in detector treats islands
independently, and relative voxel order (which breaks ties) is the same in a window as
in the cube.  So a clump is *settled* when its island, grown by the detector's
``radius`` (how far one island reaches into another: FellWalker's MaxJump), stays at
least ``margin`` voxels (the detector's read-around: box tests, MaxJump, CleanIter)
away from every face of the window that is not a face of the cube.

An island that reaches into the core and is not settled is *flagged*, with the owned
clumps in it; the tile re-runs the detector on a window around the flagged islands
(:mod:`.tile`), up to a size limit, and reports the owned clumps it still cannot
settle.  The halo only sets how often that happens: it should
be at least the largest clump extent you allow plus half the 30^3 sample
(:func:`recommended_halo`), so that a typical clump and the sample built from it lie
in the first window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..detectors import get_detector
from ..samples import SAMPLE_SIZE

__all__ = ["IslandRule", "island_mask", "island_rule", "recommended_halo", "unsettled_islands"]


@dataclass(frozen=True)
class IslandRule:
    """How far a detector's result for one clump can depend on other voxels.

    Attributes
    ----------
    level : float or None
        Voxels at or above this (K) form islands; ``None``: unknown detector, only
        the clump's own voxels count (no guarantee of tiled == untiled).
    radius : int
        Islands closer than this (Chebyshev voxels) interact (1 = touching).
    margin : int
        Voxels a settled island must keep from a window face that is not the cube's.
    """

    level: float | None
    radius: int
    margin: int


def recommended_halo(max_extent: int) -> int:
    """The halo (pixels) for clumps that reach at most ``max_extent`` pixels from their peak.

    ``max_extent`` plus half the 30^3 verification sample: the documented default
    (``--halo 24``) is for clumps reaching 9 pixels from their peak.
    """
    return int(max_extent) + SAMPLE_SIZE // 2


def island_rule(method: str, resolved: Mapping[str, Any]) -> IslandRule:
    """The :class:`IslandRule` of a detector with its resolved parameters (levels in K).

    Built-ins: ClumpFind (``Tlow``, touching), dendrogram (``min_value``, touching),
    FellWalker (``Noise``; walks jump up to ``MaxJump`` voxels, so islands that close
    interact).  A plugin declares its rule as ``Detector.extra['survey_island'] =
    {'level': PARAM_NAME, 'radius': int, 'margin': int}``; without one only the
    clump itself is checked against the faces.
    """
    det = get_detector(method)
    name = det.name.lower()
    if name == "clumpfind":
        return IslandRule(float(resolved["Tlow"]), 1, 2)
    if name == "dendrogram":
        return IslandRule(float(resolved["min_value"]), 1, 2)
    if name == "fellwalker":
        jump = max(int(resolved["MaxJump"]), 1)
        clean = max(int(resolved["CleanIter"]), 0)
        return IslandRule(float(resolved["Noise"]), jump, jump + clean + 2)
    spec = dict(det.extra.get("survey_island", {}) or {})
    if spec:
        return IslandRule(float(resolved[det.param(spec["level"]).name]),
                          int(spec.get("radius", 1)), int(spec.get("margin", 2)))
    return IslandRule(None, 1, 2)


def island_mask(data: np.ndarray, rule: IslandRule, mask: np.ndarray) -> np.ndarray:
    """Island id per voxel (0 = none); every voxel of a candidate in ``mask`` lies in an island."""
    if rule.level is None:
        on = mask > 0
    else:
        with np.errstate(invalid="ignore"):
            on = (data >= np.float32(rule.level)) | (mask > 0)
    # Islands closer than `radius` are one: dilating by h joins voxels up to 2h + 1
    # apart (26-connected), at least `radius`.
    h = max(0, int(rule.radius) // 2)
    if h:
        on = ndi.binary_dilation(on, structure=np.ones((3, 3, 3), bool), iterations=h)
    isl, _ = ndi.label(on, structure=np.ones((3, 3, 3), bool))
    return isl


def unsettled_islands(isl: np.ndarray, rule: IslandRule,
                      open_faces: tuple[tuple[bool, bool], ...]) -> np.ndarray:
    """Per island id (index 0 unused): does it come within the margin of an open face?

    Parameters
    ----------
    isl : ndarray of int
        :func:`island_mask` of a window.
    rule : IslandRule
    open_faces : ((lo, hi), ...) per axis
        ``True`` where the window face is inside the cube (data continue beyond it).
    """
    n = int(isl.max()) if isl.size else 0
    out = np.zeros(n + 1, dtype=bool)
    m = int(rule.margin)
    for i, box in enumerate(ndi.find_objects(isl), start=1):
        if box is None:
            continue
        for axis, sl in enumerate(box):
            lo_open, hi_open = open_faces[axis]
            if (lo_open and sl.start < m) or (hi_open and sl.stop > isl.shape[axis] - m):
                out[i] = True
                break
    return out
