"""ClumpFind's hand-out of a band region to the clumps it adjoins.

``IDLAlg=1`` shares a region out by nearest peak (:func:`share_idl`), ``IDLAlg=0``
erodes it into the adjoining clumps layer by layer (:func:`erode`).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .clumpfind_scan import Clumps, scan_band

#: Above this many (voxel, candidate clump) pairs a region is shared out with a k-d tree.
BRUTE_PAIRS = 2_000_000
_KD_NEIGHBOURS = 4


def share_out(coords: np.ndarray, cand: np.ndarray, clumps: Clumps) -> np.ndarray:
    """Give each voxel to the candidate clump with the nearest peak (ties: lowest id).

    For one large region (a k-d tree over the candidate peaks).

    Parameters
    ----------
    coords : ndarray, shape (n, 3)
        The region's voxel positions.
    cand : ndarray of int32
        Candidate clump ids, sorted ascending.
    clumps : Clumps
        The clumps so far (their peak positions).

    Returns
    -------
    ndarray of int32
        The clump each voxel goes to.
    """
    peaks = clumps.peak[cand]
    if coords.shape[0] * cand.size <= BRUTE_PAIRS:
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
    step = max(1, BRUTE_PAIRS // cand.size)
    for lo in range(0, coords.shape[0], step):
        q = coords[lo:lo + step].astype(np.float64)
        out[lo:lo + step] = cand[np.argmin(pp - 2.0 * (q @ pf.T), axis=1)]
    return out


def share_idl(
    comp: np.ndarray, ncomp: int, near: np.ndarray, coords: np.ndarray,
    target: np.ndarray, clumps: Clumps,
) -> np.ndarray:
    """IDLAlg=1: share each region out among the clumps its boundary voxels noted.

    Parameters
    ----------
    comp : ndarray
        Region of each band voxel (0..ncomp-1).
    ncomp : int
        Number of regions.
    near : ndarray of int32
        The clump each voxel adjoins (0 = none), from :func:`.scan_band`.
    coords : ndarray, shape (n, 3)
        The band voxels' positions.
    target : ndarray of int32
        Filled in place with the clump each shared voxel goes to.
    clumps : Clumps
        The clumps so far.

    Returns
    -------
    ndarray of bool
        The regions that start a new clump (those touching no clump).
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
            if npairs > BRUTE_PAIRS:
                cand = pair_clump[cand_start[c]:cand_start[c + 1]]
                target[part] = share_out(coords[part], cand, clumps)
                continue
            batch.append(part)
            batch_pairs += npairs
            if batch_pairs >= BRUTE_PAIRS:
                _share_small(np.concatenate(batch), comp, nneb, cand_start, pair_clump,
                             coords, target, clumps)
                batch, batch_pairs = [], 0
        if batch:
            _share_small(np.concatenate(batch), comp, nneb, cand_start, pair_clump,
                         coords, target, clumps)
    return nneb == 0


def _share_small(
    vox: np.ndarray, comp: np.ndarray, nneb: np.ndarray, cand_start: np.ndarray,
    pair_clump: np.ndarray, coords: np.ndarray, target: np.ndarray, clumps: Clumps,
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


def erode(
    comp: np.ndarray, ncomp: int, near: np.ndarray, coords: np.ndarray, pidx: np.ndarray,
    target: np.ndarray, flat_ipa: np.ndarray, neighbours: tuple[np.ndarray, np.ndarray],
    clumps: Clumps, keep_new: bool,
) -> np.ndarray:
    """IDLAlg=0: erode regions into adjoining clumps one voxel layer per pass.

    Parameters
    ----------
    comp, ncomp, near, coords, clumps
        As :func:`share_idl`.
    pidx : ndarray
        The band voxels' flat indices into ``flat_ipa``.
    target : ndarray of int32
        Filled in place with the clump each transferred voxel goes to.
    flat_ipa : ndarray of int32
        The padded assignment array, flat; transferred voxels are written in.
    neighbours : (ndarray, ndarray)
        Steps and flat offsets from :func:`.neighbour_steps`.
    keep_new : bool
        Whether a remainder starts a new clump (false at the lowest level).

    Returns
    -------
    ndarray of bool
        The regions whose remainder starts a new clump.
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
        near = scan_band(pidx[left], coords[left], flat_ipa, neighbours, clumps)[0]
    remaining = np.zeros(ncomp, dtype=bool)
    if keep_new:
        remaining[comp[left]] = True
    return remaining
