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
rule (see ``_scan_band``).  Then:

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
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from ..progress import Progress, ensure_progress
from .base import Detector, DetectorError, Param, hookimpl

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

#: Above this many (voxel, candidate clump) pairs a region is shared out with a k-d tree.
_BRUTE_PAIRS = 2_000_000
_KD_NEIGHBOURS = 4

#: Voxels whose neighbourhoods are gathered at once (memory: 26 x 4 bytes each).
_CHUNK = 1 << 18

#: A band is labelled in its bounding box when that box is at most this many times
#: larger than the band; otherwise as a sparse neighbour graph.
_DENSE_BOX = 24


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


# Neighbour offsets as (axis 1, axis 2, axis 3) steps in CUPID's axis numbering, in the
# order CUPID examines them: the first adjoining clump met wins ties in peak distance.
_FACE = ((-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, -1), (0, 0, 1))
_EDGE = ((1, -1, 0), (1, 1, 0), (-1, -1, 0), (-1, 1, 0),
         (-1, 0, 1), (1, 0, 1), (0, -1, 1), (0, 1, 1),
         (-1, 0, -1), (1, 0, -1), (0, -1, -1), (0, 1, -1))
_CORNER = ((1, -1, 1), (1, 1, 1), (-1, -1, 1), (-1, 1, 1),
           (1, -1, -1), (1, 1, -1), (-1, -1, -1), (-1, 1, -1))


def _neighbours(naxis: int, padded_shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour steps (numpy axes; CUPID's axis 1 is v, axis 0 here) and flat offsets."""
    steps = np.array(_FACE + (_EDGE if naxis >= 2 else ()) + (_CORNER if naxis == 3 else ()))
    strides = np.array([padded_shape[1] * padded_shape[2], padded_shape[2], 1])
    return steps, steps @ strides


class _Clumps:
    """Growing per-clump arrays: peak position and value, indexed by clump id (0 unused)."""

    def __init__(self) -> None:
        self.peak = np.zeros((1, 3), dtype=np.int64)
        self.vpeak = np.full(1, -np.inf, dtype=np.float64)

    @property
    def count(self) -> int:
        return self.vpeak.size - 1

    def add(self, peak: np.ndarray, vpeak: np.ndarray) -> np.ndarray:
        first = self.vpeak.size
        self.peak = np.concatenate([self.peak, peak.astype(np.int64)])
        self.vpeak = np.concatenate([self.vpeak, vpeak.astype(np.float64)])
        return np.arange(first, self.vpeak.size, dtype=np.int32)


def _scan_band(
    pidx: np.ndarray, coords: np.ndarray, flat_ipa: np.ndarray,
    neighbours: tuple[np.ndarray, np.ndarray], clumps: _Clumps, want_edges: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Look at every voxel's neighbours once: adjoining clumps, and band-internal links.

    ``pidx`` are flat indices into the padded assignment array ``flat_ipa`` (clump ids
    > 0; the band's own voxels marked ``-1 - position``; 0 elsewhere), ``coords`` the
    voxels' positions.

    Returns, per voxel, the adjoining clump CUPID deems nearest (0 = none), following
    cupidCFNebs: neighbours are examined in CUPID's order; the first clump met is taken;
    a later one replaces it only when its peak is strictly nearer, both distances being
    measured from the neighbour voxel being examined (not from the voxel itself), and
    the distance of the clump in hand is measured once, at the first neighbour that
    offers a rival.  With ``want_edges`` also the pairs of band voxels that are
    neighbours (each pair once), else ``None, None``.
    """
    steps, offsets = neighbours
    forward = np.flatnonzero(offsets > 0)
    near = np.zeros(pidx.size, dtype=np.int32)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    for lo in range(0, pidx.size, _CHUNK):
        nb = flat_ipa[pidx[lo:lo + _CHUNK, None] + offsets[None, :]]
        if want_edges:
            fwd = nb[:, forward]
            r, c = np.nonzero(fwd < 0)
            rows.append(r + lo)
            cols.append(-1 - fwd[r, c].astype(np.int64))
        # Most voxels touch a single clump, however many of their neighbours it holds;
        # only those touching several need cupidCFNebs' rule.
        high = nb.max(axis=1)
        low = np.where(nb > 0, nb, np.iinfo(np.int32).max).min(axis=1)
        near[lo:lo + nb.shape[0]] = np.maximum(high, 0)
        mixed = np.flatnonzero((high > 0) & (low != high))
        if mixed.size:
            near[lo + mixed] = _nearest_rule(nb[mixed], coords[lo + mixed], steps, clumps)
    if not want_edges:
        return near, None, None
    return near, np.concatenate(rows), np.concatenate(cols)


def _nearest_rule(
    nb: np.ndarray, coords: np.ndarray, steps: np.ndarray, clumps: _Clumps,
) -> np.ndarray:
    """cupidCFNebs' choice among the clumps in ``nb`` (voxels x neighbours, CUPID order)."""
    best = np.zeros(nb.shape[0], dtype=np.int32)
    best_d2 = np.full(nb.shape[0], -1, dtype=np.int64)  # -1: not measured yet
    for j, step in enumerate(steps):
        cid = nb[:, j]
        sel = np.flatnonzero(cid > 0)
        if sel.size == 0:
            continue
        cid = cid[sel]
        held = best[sel]
        fresh = held == 0
        best[sel[fresh]] = cid[fresh]
        rival = ~fresh
        sel, cid, held = sel[rival], cid[rival], held[rival]
        if sel.size == 0:
            continue
        pos = coords[sel] + step
        d1 = best_d2[sel]
        unmeasured = d1 < 0
        if unmeasured.any():
            d = clumps.peak[held[unmeasured]] - pos[unmeasured]
            d1[unmeasured] = np.einsum("ij,ij->i", d, d)
        d = clumps.peak[cid] - pos
        d2 = np.einsum("ij,ij->i", d, d)
        better = d2 < d1
        d1[better] = d2[better]
        best_d2[sel] = d1
        best[sel[better]] = cid[better]
    return best


def _share_out(coords: np.ndarray, cand: np.ndarray, clumps: _Clumps) -> np.ndarray:
    """Give each voxel to the candidate clump with the nearest peak (ties: lowest id).

    For one large region (a k-d tree over the candidate peaks); ``cand`` must be sorted
    ascending.
    """
    peaks = clumps.peak[cand]
    if coords.shape[0] * cand.size <= _BRUTE_PAIRS:
        return _nearest_brute(coords, cand, peaks)
    k = min(_KD_NEIGHBOURS, cand.size)
    dist, j = cKDTree(peaks).query(coords, k=k, workers=-1)
    # Distances are square roots of integers, so equal distances compare equal exactly.
    # Among tied nearest peaks the lowest id wins; ties the k found may not all show
    # (k-fold or worse) go to the exhaustive search.
    tied = dist == dist[:, :1]
    out = np.where(tied, cand[j], np.iinfo(np.int32).max).min(axis=1).astype(np.int32)
    if k < cand.size:
        unsure = np.flatnonzero(tied[:, -1])
        if unsure.size:
            out[unsure] = _nearest_brute(coords[unsure], cand, peaks)
    return out


def _nearest_brute(coords: np.ndarray, cand: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    # |q - p|^2 - |q|^2 = |p|^2 - 2 q.p, exact in float64 for pixel coordinates, so
    # argmin (first minimum, i.e. lowest id) sees ties exactly.
    pf = peaks.astype(np.float64)
    pp = np.einsum("ij,ij->i", pf, pf)
    out = np.empty(coords.shape[0], dtype=np.int32)
    step = max(1, _BRUTE_PAIRS // cand.size)
    for lo in range(0, coords.shape[0], step):
        q = coords[lo:lo + step].astype(np.float64)
        out[lo:lo + step] = cand[np.argmin(pp - 2.0 * (q @ pf.T), axis=1)]
    return out


def _dense_band(coords: np.ndarray) -> bool:
    """Label in the bounding box (True) or as a sparse neighbour graph (False)?"""
    extent = coords.max(axis=0) - coords.min(axis=0) + 1
    return bool(np.prod(extent, dtype=np.float64) <= _DENSE_BOX * coords.shape[0])


def _components(
    coords: np.ndarray, structure: np.ndarray, edges: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, int]:
    """Connected components (ids 0..n-1) of one band's voxels.

    A band that fills a good part of its bounding box is labelled there with
    ``ndimage.label``; a sparse one (typical of the upper levels, scattered over the
    whole cube) from its neighbour pairs ``edges``, at a cost that follows its size.
    """
    if edges is None:
        lo = coords.min(axis=0)
        local = tuple((coords - lo).T)
        box = np.zeros(tuple(coords.max(axis=0) - lo + 1), dtype=bool)
        box[local] = True
        lab, n = ndi.label(box, structure=structure)
        return lab[local] - 1, n
    i, j = edges
    graph = coo_matrix((np.ones(i.size, dtype=np.int8), (i, j)),
                       shape=(coords.shape[0], coords.shape[0]))
    n, comp = connected_components(graph, directed=True, connection="weak")
    return comp, n


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

    padded = (shape[0] + 2, shape[1] + 2, shape[2] + 2)
    ipa = np.zeros(padded, dtype=np.int32)  # clump ids, zero-padded so offsets never wrap
    flat_ipa = ipa.reshape(-1)
    neighbours = _neighbours(naxis, padded)
    structure = ndi.generate_binary_structure(3, naxis)
    clumps = _Clumps()
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
        pidx = np.ravel_multi_index(tuple((coords + 1).T), padded)
        values = flat[sel]
        flat_ipa[pidx] = -1 - np.arange(sel.size, dtype=np.int32)
        sparse = not _dense_band(coords)
        near, *edges = _scan_band(pidx, coords, flat_ipa, neighbours, clumps, sparse)
        step.update(0.4)
        comp, ncomp = _components(coords, structure, tuple(edges) if sparse else None)
        step.update(0.6)
        scan = _scan_key(coords, shape)
        region_peak = _region_peaks(comp, ncomp, values, scan)

        target = np.zeros(sel.size, dtype=np.int32)
        if idl:
            new_region = _share_idl(comp, ncomp, near, coords, target, clumps)
        else:
            new_region = _erode(comp, ncomp, near, coords, pidx, target, flat_ipa,
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
    keep = _keep_mask(vox, own, data, clumps, minpix, allow_edge, maxbad)
    progress.update(0.97, "clumpfind: numbering clumps")
    kept = np.flatnonzero(keep)
    kept = kept[np.argsort(-clumps.vpeak[kept], kind="stable")]
    lut = np.zeros(clumps.count + 1, dtype=np.int32)
    lut[kept] = np.arange(1, kept.size + 1, dtype=np.int32)
    out = np.zeros(shape, dtype=np.int32)
    out.reshape(-1)[vox] = lut[own]
    progress.update(1.0, f"clumpfind: {kept.size} clumps")
    return out


def _region_peaks(comp: np.ndarray, ncomp: int, values: np.ndarray,
                  scan: np.ndarray) -> np.ndarray:
    """Index of each region's peak: its largest value, first in CUPID's scan among equals.

    (CUPID itself breaks such ties by the order in which partial regions merged during
    its scan; exactly equal maxima within one region are rare in real data.)
    """
    vmax = np.full(ncomp, -np.inf, dtype=values.dtype)
    np.maximum.at(vmax, comp, values)
    top = np.flatnonzero(values == vmax[comp])
    top = top[np.lexsort((scan[top], comp[top]))]  # usually one per region: small
    first = np.ones(top.size, dtype=bool)
    first[1:] = comp[top[1:]] != comp[top[:-1]]
    peaks = np.empty(ncomp, dtype=np.int64)
    peaks[comp[top[first]]] = top[first]
    return peaks


def _scan_key(coords: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Position in CUPID's scan, v fastest (pycupid passes the (v, y, x) array in F order)."""
    return (coords[:, 2] * shape[1] + coords[:, 1]) * shape[0] + coords[:, 0]


def _share_idl(
    comp: np.ndarray, ncomp: int, near: np.ndarray, coords: np.ndarray,
    target: np.ndarray, clumps: _Clumps,
) -> np.ndarray:
    """IDLAlg=1: share each region out among the clumps its boundary voxels noted.

    Fills ``target`` for shared voxels; returns a bool mask of regions that start
    a new clump (those touching no clump).
    """
    touching = np.flatnonzero(near)
    width = np.int64(clumps.count + 1)
    pairs = np.unique(comp[touching].astype(np.int64) * width + near[touching])
    pair_comp = pairs // width
    pair_clump = (pairs % width).astype(np.int32)
    nneb = np.bincount(pair_comp, minlength=ncomp)

    single = nneb == 1
    only = np.zeros(ncomp, dtype=np.int32)
    only[pair_comp[single[pair_comp]]] = pair_clump[single[pair_comp]]
    target[:] = only[comp]

    multi = np.flatnonzero(nneb > 1)
    if multi.size:
        cand_start = np.concatenate([[0], np.cumsum(nneb)])
        members = np.flatnonzero(nneb[comp] > 1)
        members = members[np.argsort(comp[members], kind="stable")]
        sizes = np.bincount(comp[members], minlength=ncomp)[multi]
        parts = np.split(members, np.cumsum(sizes)[:-1])
        pairs_needed = sizes * nneb[multi]
        batch: list[np.ndarray] = []
        batch_pairs = 0
        for c, part, npairs in zip(multi, parts, pairs_needed, strict=True):
            if npairs > _BRUTE_PAIRS:
                cand = pair_clump[cand_start[c]:cand_start[c + 1]]
                target[part] = _share_out(coords[part], cand, clumps)
                continue
            batch.append(part)
            batch_pairs += npairs
            if batch_pairs >= _BRUTE_PAIRS:
                _share_small(np.concatenate(batch), comp, nneb, cand_start, pair_clump,
                             coords, target, clumps)
                batch, batch_pairs = [], 0
        if batch:
            _share_small(np.concatenate(batch), comp, nneb, cand_start, pair_clump,
                         coords, target, clumps)
    return nneb == 0


def _share_small(
    vox: np.ndarray, comp: np.ndarray, nneb: np.ndarray, cand_start: np.ndarray,
    pair_clump: np.ndarray, coords: np.ndarray, target: np.ndarray, clumps: _Clumps,
) -> None:
    """Nearest-peak sharing for many small regions at once, over (voxel, candidate) pairs.

    ``vox`` holds voxels of several regions; region ``c``'s candidate clumps are
    ``pair_clump[cand_start[c]:cand_start[c] + nneb[c]]`` (ascending, so the first
    minimum is the lowest id).
    """
    count = nneb[comp[vox]]
    start = np.zeros(vox.size, dtype=np.int64)
    np.cumsum(count[:-1], out=start[1:])
    owner = np.repeat(np.arange(vox.size), count)
    within = np.arange(owner.size) - start[owner]
    cid = pair_clump[cand_start[comp[vox]][owner] + within]
    d = clumps.peak[cid] - coords[vox][owner]
    d2 = np.einsum("ij,ij->i", d, d)
    best = np.minimum.reduceat(d2, start)
    hit = np.flatnonzero(d2 == best[owner])
    first = np.ones(hit.size, dtype=bool)
    first[1:] = owner[hit[1:]] != owner[hit[:-1]]
    target[vox] = cid[hit[first]]


def _erode(
    comp: np.ndarray, ncomp: int, near: np.ndarray, coords: np.ndarray, pidx: np.ndarray,
    target: np.ndarray, flat_ipa: np.ndarray, neighbours: tuple[np.ndarray, np.ndarray],
    clumps: _Clumps, keep_new: bool,
) -> np.ndarray:
    """IDLAlg=0: erode regions into adjoining clumps one voxel layer per pass.

    Fills ``target`` (and ``flat_ipa``) for transferred voxels; returns a bool mask of
    regions whose remainder starts a new clump.
    """
    left = np.arange(comp.size)
    while True:
        moved = near != 0
        if not moved.any():
            break
        target[left[moved]] = near[moved]
        flat_ipa[pidx[left[moved]]] = near[moved]
        left = left[~moved]
        if left.size == 0:
            break
        near = _scan_band(pidx[left], coords[left], flat_ipa, neighbours, clumps)[0]
    remaining = np.zeros(ncomp, dtype=bool)
    if keep_new:
        remaining[comp[left]] = True
    return remaining


def _keep_mask(
    vox: np.ndarray, own: np.ndarray, data: np.ndarray, clumps: _Clumps, minpix: int,
    allow_edge: bool, maxbad: float,
) -> np.ndarray:
    """Which clump ids (index = id) survive CUPID's rejection tests.

    ``vox`` are the flat indices of all assigned voxels and ``own`` their clump ids.
    """
    n = clumps.count
    shape = data.shape
    pop = np.bincount(own, minlength=n + 1)
    keep = pop >= max(int(minpix), 1)
    keep[0] = False
    coords = np.unravel_index(vox, shape)

    # A clump one pixel thick along any (non-degenerate) axis is rejected, as in CUPID.
    for axis, c in enumerate(coords):
        if shape[axis] == 1:
            continue
        lo = np.full(n + 1, shape[axis], dtype=np.int64)
        hi = np.full(n + 1, -1, dtype=np.int64)
        np.minimum.at(lo, own, c)
        np.maximum.at(hi, own, c)
        keep &= hi > lo
        if not allow_edge:
            on_edge = (c == 0) | (c == shape[axis] - 1)
            keep[np.unique(own[on_edge])] = False

    if shape[0] > 2 and np.isnan(data).any():
        # CUPID counts clump voxels next to a blank one along its first axis (v here).
        v = coords[0]
        inner = np.flatnonzero((v > 0) & (v < shape[0] - 1))
        step = shape[1] * shape[2]
        flat = data.reshape(-1)
        bad = np.isnan(flat[vox[inner] - step]) | np.isnan(flat[vox[inner] + step])
        nbad = np.bincount(own[inner[bad]], minlength=n + 1)
        keep &= ~(nbad > maxbad * pop)
    return keep


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
