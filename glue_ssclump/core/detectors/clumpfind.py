"""ClumpFind (Williams, de Geus & Blitz 1994) as implemented by Starlink CUPID.

This is a numpy/scipy re-implementation of CUPID's ``FINDCLUMPS METHOD=ClumpFind``
(SUN/255), written from its documentation and from reading its source; parameter
names and meanings are CUPID's.  The paper's settings (SS-3D-Clump, Sect. 2.2) are the
defaults: ``Tlow`` 3 rms, ``DeltaT`` 2 rms, ``MinPix`` 27, ``AllowEdge`` 1,
``IDLAlg`` 1, ``MaxBad`` 0.05, ``Naxis`` 3, ``FwhmBeam`` 2, ``VeloRes`` 2.

Algorithm
---------
Contour levels are ``Tlow, Tlow + DeltaT, ...`` up to the cube maximum (as CUPID, by
repeated addition in double precision).  Going down from the highest level, the voxels
at or above the level that no clump holds yet (the band between this level and the
one above, since everything above was assigned already) are split into connected
regions (``Naxis`` sets the connectivity: 1 = faces, 6 neighbours; 2 = faces and
edges, 18; 3 = also corners, 26).  Each boundary voxel of a region notes one of the
already existing clumps it adjoins: the one with the nearest peak, by CUPID's exact
rule (see :func:`.clumpfind_scan.scan_band`).  Then:

* ``IDLAlg=1`` (the IDL ClumpFind of J. Williams, 2006, as emulated by CUPID): a region
  that adjoins no clump starts a new clump (at every level, the lowest included); a
  region that adjoins clumps is shared out entirely among the clumps noted by its
  boundary voxels, every voxel going to the one whose peak is nearest (squared
  Euclidean distance in pixels; ties go to the older clump).  Clumps therefore need not
  be contiguous, as in CUPID.
* ``IDLAlg=0`` (the ApJ paper's "friends of friends"): the region is eroded, one voxel
  layer per pass, every voxel touching a clump moving to the touching clump with the
  nearest peak; what is left when no voxel touches a clump any more becomes a new clump,
  except at the lowest level, where it is dropped (so clumps must peak above the second
  level).

Finally clumps are rejected when they hold fewer than ``MinPix`` voxels, span a single
pixel along any axis longer than one pixel, touch the array edge (unless
``AllowEdge``), or when more than ``MaxBad`` of their voxels are next to a blank (NaN)
voxel along CUPID's first pixel axis.  The survivors are numbered 1..N by decreasing
peak value.  Blank voxels are never part of a clump and do not connect regions.

Axis order.  The project's reference output is pycupid's ``clumpfind`` called on the
numpy ``(v, y, x)`` array; pycupid hands CUPID that array in Fortran order, so CUPID's
first axis is v.  This implementation follows that convention: voxels are scanned with
v varying fastest (this decides ties: which of equal values is a region's peak, and the
order, hence the seniority, of clumps born at the same level) and the ``MaxBad`` test
looks along v.  (``FINDCLUMPS`` run on the FITS file would instead scan x fastest and
test along x; its masks differ from these where peak distances or values tie, and
where blank voxels lie next to clumps.)  With these conventions the mask of the L1448
test cube equals CUPID's voxel for voxel, clump numbers included.

``FwhmBeam`` and ``VeloRes`` do not change the mask: CUPID uses them only to
deconvolve the catalogued clump sizes and for a default ``MinPix``, which here always
has a value.

This module holds the parameters, the contour levels and the driver; a band's
neighbours and regions are found in :mod:`.clumpfind_scan`, regions are handed to
clumps in :mod:`.clumpfind_share` and the rejection tests are in
:mod:`.clumpfind_select`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..progress import Progress, ensure_progress
from .base import Detector, DetectorError, Param, hookimpl
from .clumpfind_scan import (
    Clumps,
    components,
    dense_band,
    neighbour_steps,
    region_peaks,
    scan_band,
    scan_key,
)
from .clumpfind_select import keep_mask
from .clumpfind_share import erode, share_idl
from .cupid_common import PaddedGrid, number_by_peak

PARAMS = (
    Param("Tlow", "3rms", "level", "lowest contour level (K, or e.g. '3rms')"),
    Param("DeltaT", "2rms", "level", "gap between contour levels (K, or e.g. '2rms')"),
    Param("MinPix", 27, "int", "fewest voxels in a clump"),
    Param("AllowEdge", True, "bool", "keep clumps that touch the edge of the cube"),
    Param("IDLAlg", True, "bool",
          "share merged regions out by nearest peak as the IDL ClumpFind (1), "
          "or by the ApJ paper's erosion (0)"),
    Param("Naxis", 3, "int", "neighbours: 1 = faces (6), 2 = +edges (18), 3 = +corners (26)"),
    Param("MaxBad", 0.05, "float",
          "largest fraction of a clump's voxels that may sit next to blank voxels"),
    Param("FwhmBeam", 2.0, "float",
          "beam FWHM in pixels (catalogue deconvolution only; no effect on the mask)"),
    Param("VeloRes", 2.0, "float",
          "velocity resolution in channels (catalogue deconvolution only; no effect "
          "on the mask)"),
    Param("Noise", "2rms", "level",
          "listed with the paper's settings; CUPID's ClumpFind has no use for it"),
)

#: More contour levels than this is almost surely a DeltaT given in the wrong unit.
MAX_LEVELS = 100_000


def contour_levels(maxd: float, tlow: float, deltat: float) -> np.ndarray:
    """Contour levels in increasing order, as CUPID computes them.

    Parameters
    ----------
    maxd : float
        Largest data value.
    tlow, deltat : float
        Lowest level and level spacing (K).

    Returns
    -------
    ndarray of float64
        ``int((maxd - tlow) / deltat) + 1`` levels from ``tlow`` up by ``deltat``
        (empty when ``tlow`` is not below ``maxd``).
    """
    if not deltat > 0:
        raise DetectorError(f"DeltaT must be positive, got {deltat!r}")
    if not tlow < maxd:
        return np.empty(0)
    n = int((maxd - tlow) / deltat) + 1
    if n > MAX_LEVELS:
        raise DetectorError(
            f"Tlow={tlow:g} and DeltaT={deltat:g} give {n} contour levels up to the cube "
            f"maximum {maxd:g}; use a larger DeltaT (e.g. '2rms')"
        )
    steps = np.full(n, deltat, dtype=np.float64)
    steps[0] = tlow
    return np.add.accumulate(steps)


def _float32_threshold(level: float) -> np.float32:
    """Smallest float32 ``t`` with ``x >= t`` iff ``float64(x) >= level`` for float32 x."""
    t = np.float32(level)
    if float(t) < level:
        t = np.nextafter(t, np.float32(np.inf))
    return t


def clumpfind(
    data: np.ndarray,
    tlow: float,
    deltat: float,
    *,
    minpix: int = 27,
    allow_edge: bool = True,
    idl: bool = True,
    naxis: int = 3,
    maxbad: float = 0.05,
    progress: Progress | None = None,
) -> np.ndarray:
    """Run ClumpFind on a ``(v, y, x)`` cube.

    Parameters
    ----------
    data : ndarray
        The cube (K), 3D; NaN marks blank voxels.
    tlow, deltat : float
        Lowest contour level and contour spacing, K.
    minpix : int
        Fewest voxels in a kept clump.
    allow_edge : bool
        Keep clumps that touch an edge of the array.
    idl : bool
        ``True``: CUPID's ``IDLAlg=1`` (nearest-peak sharing); ``False``: the ApJ
        paper's erosion.
    naxis : {1, 2, 3}
        Connectivity (see the module docstring).
    maxbad : float
        Largest allowed fraction of clump voxels next to a blank voxel.
    progress : Progress, optional
        Progress / cancellation (``update`` is called a few times per contour level).

    Returns
    -------
    ndarray of int32
        Same shape as ``data``; 0 = no clump, clumps 1..N by decreasing peak value.
    """
    progress = ensure_progress(progress)
    data = np.asarray(data, dtype=np.float32)
    if data.ndim != 3:
        raise DetectorError(f"ClumpFind needs a 3D (v, y, x) array, got shape {data.shape}")
    if naxis not in (1, 2, 3):
        raise DetectorError(f"Naxis must be 1, 2 or 3, got {naxis!r}")
    shape = data.shape
    if data.size == 0 or not np.isfinite(data).any():
        return np.zeros(shape, dtype=np.int32)
    maxd = float(np.nanmax(data))
    if np.isinf(maxd):  # +inf cannot be contoured: treat it (rare) as blank
        data = np.where(np.isposinf(data), np.float32(np.nan), data)
        if not np.isfinite(data).any():
            return np.zeros(shape, dtype=np.int32)
        maxd = float(np.nanmax(data))
    levels = contour_levels(maxd, float(tlow), float(deltat))
    if levels.size == 0:
        progress.update(1.0, "clumpfind: nothing above Tlow")
        return np.zeros(shape, dtype=np.int32)

    # Voxels at or above Tlow grouped by the band (between two levels) they fall in.
    flat = data.reshape(-1)
    idx = np.flatnonzero(flat >= _float32_threshold(levels[0]))
    band = np.searchsorted(levels, flat[idx].astype(np.float64), side="right") - 1
    band = band.astype(np.int32 if levels.size > 32_000 else np.int16)
    order = np.argsort(band, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(band, minlength=levels.size))])
    idx = idx[order]
    del band, order

    grid = PaddedGrid(shape, 1)
    ipa = np.zeros(grid.pshape, dtype=np.int32)  # clump ids, zero-padded: offsets never wrap
    flat_ipa = ipa.reshape(-1)
    neighbours = neighbour_steps(naxis, grid)
    structure = ndi.generate_binary_structure(3, naxis)
    clumps = Clumps()
    assigned: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    total = max(int(idx.size), 1)
    done = 0

    for k in range(levels.size - 1, -1, -1):
        sel = idx[bounds[k]:bounds[k + 1]]
        step = progress.span(0.02 + 0.9 * done / total, 0.02 + 0.9 * (done + sel.size) / total)
        step.update(0.0, f"clumpfind: level {levels.size - k}/{levels.size} "
                         f"({levels[k]:.4g}), {clumps.count} clumps")
        if sel.size == 0:
            continue
        done += sel.size
        coords = np.stack(np.unravel_index(sel, shape), axis=1)
        pidx = np.ravel_multi_index(tuple((coords + 1).T), grid.pshape)
        values = flat[sel]
        flat_ipa[pidx] = -1 - np.arange(sel.size, dtype=np.int32)
        sparse = not dense_band(coords)
        near, *edges = scan_band(pidx, coords, flat_ipa, neighbours, clumps, sparse)
        step.update(0.4)
        comp, ncomp = components(coords, structure, tuple(edges) if sparse else None)
        step.update(0.6)
        scan = scan_key(coords, shape)
        region_peak = region_peaks(comp, ncomp, values, scan)

        target = np.zeros(sel.size, dtype=np.int32)
        if idl:
            new_region = share_idl(comp, ncomp, near, coords, target, clumps)
        else:
            new_region = erode(comp, ncomp, near, coords, pidx, target, flat_ipa,
                                neighbours, clumps, keep_new=k > 0)

        # New clumps are numbered in the order CUPID's scan meets their first voxel.
        new_ids = np.flatnonzero(new_region)
        if new_ids.size:
            first = np.full(ncomp, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(first, comp, scan)
            new_ids = new_ids[np.argsort(first[new_ids], kind="stable")]
            pk = region_peak[new_ids]
            ids = clumps.add(coords[pk], values[pk])
            lut = np.zeros(ncomp, dtype=np.int32)
            lut[new_ids] = ids
            fill = target == 0
            target[fill] = lut[comp[fill]]
        flat_ipa[pidx] = target
        keep = target > 0
        assigned.append(sel[keep])
        owners.append(target[keep])

    del ipa, flat_ipa
    progress.update(0.93, "clumpfind: rejecting clumps")
    vox = np.concatenate(assigned) if assigned else np.empty(0, dtype=np.int64)
    own = np.concatenate(owners) if owners else np.empty(0, dtype=np.int32)
    del assigned, owners
    keep = keep_mask(vox, own, data, clumps, minpix, allow_edge, maxbad)
    progress.update(0.97, "clumpfind: numbering clumps")
    lut = number_by_peak(keep, clumps.vpeak)
    out = np.zeros(shape, dtype=np.int32)
    out.reshape(-1)[vox] = lut[own]
    progress.update(1.0, f"clumpfind: {int(lut.max())} clumps")
    return out


def run(data: np.ndarray, rms: float, params: dict[str, Any], progress: Progress) -> np.ndarray:
    """Detector entry point: ClumpFind with resolved CUPID parameters (levels in K)."""
    return clumpfind(
        data,
        params["Tlow"],
        params["DeltaT"],
        minpix=params["MinPix"],
        allow_edge=params["AllowEdge"],
        idl=params["IDLAlg"],
        naxis=params["Naxis"],
        maxbad=params["MaxBad"],
        progress=progress,
    )


DETECTOR = Detector(
    name="clumpfind",
    description="ClumpFind (Williams et al. 1994), CUPID's IDL-compatible variant",
    params=PARAMS,
    run=run,
    reference="Williams, de Geus & Blitz 1994, ApJ 428, 693; Berry et al. 2007 (CUPID)",
)


@hookimpl
def ssclump_detectors() -> list[Detector]:
    return [DETECTOR]
