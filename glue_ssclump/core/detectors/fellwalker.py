"""FellWalker (Berry 2015, Astronomy & Computing 10, 22), as in Starlink CUPID.

The steps and parameter names follow CUPID's ``FellWalker.*`` configuration
parameters (SUN/255) and the behaviour of CUPID's implementation:

1. Voxels above ``Noise`` are usable; a cellular automaton drops usable voxels that
   have fewer than about 10% usable voxels in their 3x3x3 box (isolated noise).
2. From every usable voxel a walk goes up the steepest gradient to one of its 26
   neighbours (gradient = difference / centre distance 1, sqrt 2 or sqrt 3).  At a
   local maximum the walk looks for a higher usable voxel within ``MaxJump`` voxels
   (a (2 MaxJump + 1)^3 box) and jumps there; a voxel that is the highest of its box
   is a peak.  All voxels whose walks reach the same peak form a clump.
3. A walk that starts at or below ``Noise + 2 rms`` ("sea level") keeps only the part
   from where its gradient first exceeds ``FlatSlope`` (averaged over 3 steps) or it
   rises above sea level; the flat start is left out of every clump.
4. ``MinDip``: a clump is merged into the adjacent clump with the highest col when
   its peak is less than ``MinDip`` above that col.  The col between two clumps is
   the lowest point of their interface (mean of two touching voxels), i.e. clumps
   merge when every voxel pair along their interface lies above ``PEAK - MinDip``,
   as CUPID's FellWalker documentation describes MinDip.  (CUPID's current join code
   uses the highest point of the interface instead; on the L1448 reference run made
   with pycupid 0.1.7 that rule would merge 143 clumps into about 40, while CUPID's
   output shows no merge at all, which the interface minimum reproduces.)
5. ``CleanIter`` passes replace each voxel's label by the most common label of its
   3x3x3 box (background included).
6. Clumps are rejected when they have ``MinPix`` voxels or fewer, a peak below
   ``MinHeight``, a one-voxel extent on any axis, touch the edge (``AllowEdge`` 0),
   have more than ``MaxBad`` of their voxels on or beside blank voxels, or are no
   wider than the beam (``FwhmBeam`` spatially, ``VeloRes`` spectrally: the
   intensity-weighted variance along an axis must exceed FWHM^2 / (8 ln 2)).  The
   beam test is FINDCLUMPS's (cupidStoreClumps); library callers such as pycupid skip
   it, which FwhmBeam = VeloRes = 0 reproduces.
   Surviving clumps are numbered 1..N by decreasing peak value.

Axis order: pycupid hands numpy ``(v, y, x)`` cubes to CUPID in Fortran order, so
CUPID's first (fastest) pixel axis is v.  The same layout is used here; it fixes the
order in which walks start, tie-breaks between equal neighbours and the axis of the
MaxBad test.  With it (and FwhmBeam = VeloRes = 0) the L1448 reference run is
reproduced: the same 143 clumps, the same ids, 99.9% of the voxels identical.

CUPID walks one voxel at a time in array order; this implementation is vectorised
(numpy, no compiled code): an uphill pointer per voxel, pointer jumping to the peaks,
and the order-dependent parts of CUPID reproduced from the pointer forest (a voxel is
first reached by the walk that starts at the lowest array index in its up-hill
subtree, so each walk's extent and flat start follow without walking).  One
difference remains: CUPID stops later walks from stepping onto voxels that an earlier
walk left out as flat ground, whereas here every walk follows the same pointers; this
only changes low-level (below sea level) clump edges.

This module holds the parameters and the driver; the steps live in
:mod:`.fellwalker_walk` (1-3), :mod:`.fellwalker_merge` (4), :mod:`.fellwalker_clean`
(5) and :mod:`.fellwalker_select` (6).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..progress import Progress, ensure_progress
from .base import Detector, Param, hookimpl
from .cupid_common import PaddedGrid
from .fellwalker_clean import clean
from .fellwalker_merge import interfaces, merge
from .fellwalker_select import select
from .fellwalker_walk import first_visitor, flat_start, forest, uphill, usable_mask

PARAMS = (
    Param("Noise", "2rms", "level", "walks start only above this level (K, or e.g. '2rms')"),
    Param("MinDip", "2rms", "level",
          "adjacent clumps merge if a peak is less than this above their whole interface"),
    Param("MinHeight", "3rms", "level", "lowest allowed clump peak"),
    Param("MinPix", 27, "int", "a clump needs more voxels than this"),
    Param("AllowEdge", True, "bool", "keep clumps that touch the edge of the cube"),
    Param("FwhmBeam", 2.0, "float", "spatial beam FWHM in pixels (clumps must be wider)"),
    Param("VeloRes", 2.0, "float", "velocity resolution in channels (clumps must be wider)"),
    Param("FlatSlope", "1rms", "level",
          "walks from low ground are kept from where the gradient (K per pixel) exceeds this"),
    Param("MaxJump", 4, "int", "at a local peak, look this many voxels around for a higher one"),
    Param("CleanIter", 1, "int", "passes of 3x3x3 majority smoothing of the clump edges"),
    Param("MaxBad", 0.05, "float", "largest fraction of a clump's voxels on or next to blanks"),
)


def run(data: np.ndarray, rms: float, params: dict[str, Any], progress: Progress) -> np.ndarray:
    """Detector entry point (see :class:`~.base.Detector`).

    Parameters
    ----------
    data : ndarray
        float32 cube ``(v, y, x)`` in K, NaN = blank.
    rms : float
        Noise rms in K.
    params : dict
        Resolved parameters keyed by the names in :data:`PARAMS` (levels in K).
    progress : Progress
        Progress reporting and cancellation.

    Returns
    -------
    ndarray
        int32 mask, 0 = none, clumps 1..N by decreasing peak.
    """
    return fellwalker(
        data,
        rms,
        noise=params["Noise"],
        mindip=params["MinDip"],
        minheight=params["MinHeight"],
        minpix=params["MinPix"],
        allow_edge=params["AllowEdge"],
        fwhm_beam=params["FwhmBeam"],
        velo_res=params["VeloRes"],
        flat_slope=params["FlatSlope"],
        max_jump=params["MaxJump"],
        clean_iter=params["CleanIter"],
        max_bad=params["MaxBad"],
        progress=progress,
    )


def fellwalker(
    data: np.ndarray,
    rms: float,
    *,
    noise: float,
    mindip: float,
    minheight: float,
    minpix: int = 27,
    allow_edge: bool = True,
    fwhm_beam: float = 2.0,
    velo_res: float = 2.0,
    flat_slope: float | None = None,
    max_jump: int = 4,
    clean_iter: int = 1,
    max_bad: float = 0.05,
    progress: Progress | None = None,
) -> np.ndarray:
    """Find clumps in a ``(v, y, x)`` cube with the FellWalker algorithm.

    Parameters
    ----------
    data : ndarray
        The cube, ``(v, y, x)``, in K; NaN marks blank voxels.
    rms : float
        Noise rms in K (sets sea level ``noise + 2 rms`` and the default ``flat_slope``).
    noise, mindip, minheight : float
        CUPID's Noise, MinDip and MinHeight, in K.
    minpix : int
        Clumps with ``minpix`` voxels or fewer are rejected (CUPID's test).
    allow_edge : bool
        If false, reject clumps that reach the cube edge (CUPID's test: a bounding
        box starting in the first two planes of an axis or ending in the last one).
    fwhm_beam, velo_res : float
        Beam FWHM (pixels) and velocity resolution (channels); clumps not wider
        than these on every axis are rejected.
    flat_slope : float, optional
        CUPID's FlatSlope in K per pixel; default ``rms``.
    max_jump : int
        CUPID's MaxJump (voxels).
    clean_iter : int
        Number of 3x3x3 majority-filter passes over the mask.
    max_bad : float
        Largest fraction of clump voxels that are blank or next to a blank voxel
        along CUPID's first pixel axis (here v, see the module notes).
    progress : Progress, optional
        Progress reporting; ``update`` raises ``Cancelled`` when the user cancels.

    Returns
    -------
    ndarray
        int32 mask, same shape as ``data``: 0 = no clump, clumps 1..N by decreasing
        peak value.
    """
    progress = ensure_progress(progress)
    data = np.asarray(data, dtype=np.float32)
    if data.ndim != 3:
        raise ValueError(f"FellWalker needs a 3D (v, y, x) array, got shape {data.shape}")
    if flat_slope is None:
        flat_slope = rms
    max_jump = max(int(max_jump), 0)
    # Work on the (x, y, v) view, scanned in C order (v fastest): CUPID then sees the
    # velocity axis as its first pixel axis, as pycupid lays numpy cubes out.  This
    # fixes the scan and tie-break order and reproduces the reference run exactly.
    cube = data.T
    pad = max(1, max_jump)
    grid = PaddedGrid(cube.shape, pad)

    progress.update(0.0, "fellwalker: usable voxels")
    usable = usable_mask(data, noise).T  # the box test does not depend on axis order

    # Padded copy of the data: -inf marks voxels a walk may not step on (unusable,
    # blank, outside the cube), so neighbour and MaxJump searches need no bounds tests.
    vals = np.full(grid.pshape, -np.inf, dtype=np.float32)
    inner = vals[grid.inner]
    np.copyto(inner, cube)
    np.copyto(inner, -np.inf, where=~usable)
    del usable, inner
    vflat = vals.reshape(-1)
    pidx = np.flatnonzero(vflat > -np.inf).astype(grid.itype)
    n = pidx.size
    if n == 0:
        progress.update(1.0, "fellwalker: no voxel above Noise")
        return np.zeros(data.shape, dtype=np.int32)
    height = vflat[pidx].astype(np.float64)

    # cmap: padded flat index -> compact index (-1 where unusable).  Compact arrays get
    # one extra trailing element so that index -1 reads a neutral value.
    cmap = np.full(grid.psize, -1, dtype=np.int32 if n < 2**31 - 1 else np.int64)
    cmap[pidx] = np.arange(n, dtype=cmap.dtype)

    parent = uphill(vflat, pidx, height, cmap, grid, max_jump, progress.span(0.02, 0.4))

    progress.update(0.42, "fellwalker: following walks to their peaks")
    root, depth = forest(parent)
    progress.update(0.48, "fellwalker: flat starts of walks")
    first = first_visitor(parent, depth, progress.span(0.48, 0.53))
    keep = ~flat_start(parent, depth, first, height, noise + 2.0 * rms, flat_slope)

    # Clumps are numbered in the order CUPID creates them: by their first walk.
    key = np.full(n, n, dtype=first.dtype)
    np.minimum.at(key, root[keep], first[keep])
    roots = np.flatnonzero(key < n)
    roots = roots[np.argsort(key[roots], kind="stable")]
    nclump = roots.size
    lut = np.zeros(n, dtype=np.int32)
    lut[roots] = np.arange(1, nclump + 1, dtype=np.int32)
    lab = np.where(keep, lut[root], 0).astype(np.int32)
    del root, depth, first, keep, key, lut, parent

    # The padded label grid reuses cmap's memory: -1 outside the cube, 0 background.
    labp = cmap.reshape(grid.pshape)
    del cmap
    labp.fill(-1)
    labp[grid.inner] = 0
    labp.reshape(-1)[pidx] = lab

    progress.update(0.55, f"fellwalker: merging {nclump} raw clumps (MinDip)")
    if mindip > 0 and nclump > 1:
        pairs, cols = interfaces(labp, vals, grid, progress.span(0.55, 0.65))
        vpeak = np.full(nclump + 1, -np.inf)
        np.maximum.at(vpeak, lab, height)
        remap = merge(nclump, pairs, cols, vpeak, mindip)
        labp.reshape(-1)[pidx] = remap[lab]
    del vals, vflat, height, pidx, lab

    for it in range(max(int(clean_iter), 0)):
        frac = 0.68 + 0.2 * it / max(int(clean_iter), 1)
        progress.update(frac, f"fellwalker: cleaning clump edges ({it + 1}/{clean_iter})")
        clean(labp, grid, progress.span(frac, frac + 0.2 / clean_iter))

    progress.update(0.9, "fellwalker: rejecting small, low and beam-sized clumps")
    mask = select(
        cube, labp, grid, minpix=minpix, minheight=minheight, allow_edge=allow_edge,
        beam=(fwhm_beam, fwhm_beam, velo_res), max_bad=max_bad,
    )
    mask = np.ascontiguousarray(mask.T)
    progress.update(1.0, f"fellwalker: {int(mask.max())} clumps")
    return mask


DETECTOR = Detector(
    name="fellwalker",
    description="FellWalker watershed-like clump finder (Berry 2015), CUPID's algorithm",
    params=PARAMS,
    run=run,
    reference="Berry 2015, Astronomy and Computing 10, 22",
)


@hookimpl
def ssclump_detectors() -> list[Detector]:
    return [DETECTOR]
