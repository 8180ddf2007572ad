"""FellWalker's walks: usable voxels, uphill pointers, peaks and flat walk starts.

CUPID walks one voxel at a time in array order; here every voxel gets a pointer to
the next voxel of its walk (steepest ascent, or a MaxJump at a local maximum), the
pointers are followed to the peaks by pointer jumping, and the order-dependent parts
of CUPID's scan (which walk owns a voxel, where a walk's flat start ends) are read
off the pointer forest.  See :mod:`.fellwalker` for the algorithm.
"""

from __future__ import annotations

import numpy as np

from ..progress import Progress
from .cupid_common import PaddedGrid

# CUPID's distances between voxel centres, indexed by the number of non-zero offsets.
_DIST = (0.0, 1.0, 1.4142136, 1.7320508)
#: Rows of compact arrays processed at once (bounds the temporaries).
CHUNK = 1 << 21


def _box_sum3(a: np.ndarray) -> np.ndarray:
    """Sum over each voxel's 3x3x3 box (zero outside), for small non-negative ints."""
    out = a.astype(np.uint8)
    for axis in range(3):
        if out.shape[axis] < 2:
            continue
        s = out.copy()
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(1, None), slice(None, -1)
        s[tuple(lo)] += out[tuple(hi)]
        s[tuple(hi)] += out[tuple(lo)]
        out = s
    return out


def usable_mask(data: np.ndarray, noise: float) -> np.ndarray:
    """Voxels above ``noise`` that have more than 10% such voxels in their box.

    Parameters
    ----------
    data : ndarray
        The cube (any axis order: the 3x3x3 box test is symmetric); NaN is never usable.
    noise : float
        CUPID's Noise level, K.

    Returns
    -------
    ndarray of bool
        Same shape as ``data``.
    """
    on = data > noise  # NaN compares false
    count = _box_sum3(on)
    # Number of in-cube voxels in each box: product of per-axis counts (3, or 2 at edges).
    per_axis = []
    for s in data.shape:
        c = np.full(s, 3, dtype=np.uint8)
        c[0] -= 1
        c[-1] -= 1
        if s == 1:
            c[:] = 1
        per_axis.append(c)
    total = per_axis[0][:, None, None] * per_axis[1][None, :, None] * per_axis[2][None, None, :]
    # CUPID: fraction > 0.1; the box sizes never make the fraction exactly 0.1.
    on &= count.astype(np.uint16) * 10 > total
    return on


def uphill(
    vflat: np.ndarray, pidx: np.ndarray, height: np.ndarray, cmap: np.ndarray,
    grid: PaddedGrid, max_jump: int, progress: Progress,
) -> np.ndarray:
    """Compact index of the next voxel on each voxel's walk (itself at a peak).

    Parameters
    ----------
    vflat : ndarray of float32
        The padded cube, flat; -inf where a walk may not step.
    pidx : ndarray
        Padded flat index of every usable voxel (the compact order).
    height : ndarray of float64
        The usable voxels' values, compact order.
    cmap : ndarray
        Padded flat index -> compact index, -1 where unusable.
    grid : PaddedGrid
        Geometry of the padded cube (padding at least ``max(1, max_jump)``).
    max_jump : int
        CUPID's MaxJump, voxels.
    progress : Progress
        Progress reporting and cancellation.

    Returns
    -------
    ndarray
        Parent pointers, compact indices, same dtype as ``cmap``.
    """
    n = pidx.size
    parent = np.empty(n, dtype=cmap.dtype)
    offsets, dists = [], []
    for dz in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                nz = (dz != 0) + (dy != 0) + (dx != 0)
                if nz:
                    offsets.append(grid.offset(dz, dy, dx))
                    dists.append(_DIST[nz])
    offsets = np.asarray(offsets, dtype=grid.itype)
    local_max = []
    size = min(n, CHUNK)
    ibuf = np.empty(size, dtype=pidx.dtype)
    nb = np.empty(size, dtype=np.float32)
    g = np.empty(size)
    better = np.empty(size, dtype=bool)
    for lo in range(0, n, CHUNK):
        progress.update(0.8 * lo / n, "fellwalker: steepest ascent")
        hi = min(lo + CHUNK, n)
        m = hi - lo
        p = pidx[lo:hi]
        h = height[lo:hi]
        best = np.full(m, -np.inf)
        best_k = np.zeros(m, dtype=np.int8)
        for k in range(offsets.size):
            # CUPID's gradient, in double precision with its distance constants; the
            # first neighbour in scan order wins a tie.
            np.add(p, offsets[k], out=ibuf[:m])
            np.take(vflat, ibuf[:m], out=nb[:m])
            np.subtract(nb[:m], h, out=g[:m])
            if dists[k] != 1.0:
                np.divide(g[:m], dists[k], out=g[:m])
            np.greater(g[:m], best, out=better[:m])
            np.maximum(best, g[:m], out=best)
            np.copyto(best_k, np.int8(k), where=better[:m])
        parent[lo:hi] = cmap[p + offsets[best_k]]
        local_max.append(np.flatnonzero(best <= 0) + lo)
    local_max = np.concatenate(local_max)

    # MaxJump: from a local maximum, jump to the highest usable voxel of the box around
    # it (the first in scan order on ties); the box's own maximum is a peak.
    progress.update(0.8, f"fellwalker: MaxJump search at {local_max.size} local maxima")
    box = grid.box_offsets(max_jump)
    rows = max(1, CHUNK // box.size)
    for lo in range(0, local_max.size, rows):
        progress.update(0.8 + 0.2 * lo / max(local_max.size, 1))
        lm = local_max[lo:lo + rows]
        vals = vflat[pidx[lm][:, None] + box[None, :]]
        target = pidx[lm] + box[np.argmax(vals, axis=1)]
        parent[lm] = cmap[target]
    progress.update(1.0)
    return parent


def forest(parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak (root) and number of steps to it for every voxel, by pointer jumping.

    Parameters
    ----------
    parent : ndarray
        Uphill pointers from :func:`uphill`.

    Returns
    -------
    root : ndarray
        Compact index of each voxel's peak.
    depth : ndarray of int32
        Steps from each voxel to its peak.
    """
    n = parent.size
    anc = parent.copy()
    depth = (parent != np.arange(n, dtype=parent.dtype)).astype(np.int32)
    for _ in range(64):
        nxt = anc[anc]
        if np.array_equal(nxt, anc):
            return anc, depth
        depth += depth[anc]
        anc = nxt
    raise RuntimeError("FellWalker walks did not converge (cycle in the uphill pointers)")


def first_visitor(parent: np.ndarray, depth: np.ndarray, progress: Progress) -> np.ndarray:
    """Lowest compact index in each voxel's up-hill subtree.

    In CUPID's scan every voxel is first reached by the walk that starts at the lowest
    array index among the voxels whose walks pass through it; that walk owns it.

    Parameters
    ----------
    parent, depth : ndarray
        Uphill pointers and steps to the peak (:func:`uphill`, :func:`forest`).
    progress : Progress
        Progress reporting and cancellation.

    Returns
    -------
    ndarray
        For each voxel, the compact index of the walk that owns it.
    """
    n = parent.size
    first = np.arange(n, dtype=parent.dtype)
    maxd = int(depth.max())
    if maxd == 0:
        return first
    key = depth.astype(np.uint16) if maxd < 2**16 else depth
    order = np.argsort(key, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(depth, minlength=maxd + 1))))
    for d in range(maxd, 0, -1):
        if d % 16 == 0:
            progress.update(1.0 - d / maxd)
        nodes = order[bounds[d]:bounds[d + 1]]
        np.minimum.at(first, parent[nodes], first[nodes])
    return first


def flat_start(
    parent: np.ndarray, depth: np.ndarray, first: np.ndarray, height: np.ndarray,
    sea_level: float, flat_slope: float,
) -> np.ndarray:
    """True for voxels in the flat low-level start of the walk that owns them.

    A walk owns the voxels with the same ``first``; positions along it count from its
    start.  CUPID ends the flat start at the first position ``i`` where the height is
    above sea level, or (``i >= 3``) where the rise over the last 3 steps divided by 3
    exceeds ``flat_slope``; the start is dropped only if that is 4 or more voxels long
    (or the whole walk, when the walk never gets steep and is 4+ voxels long).

    Parameters
    ----------
    parent, depth, first : ndarray
        Uphill pointers, steps to the peak and owning walk of every voxel.
    height : ndarray of float64
        The voxels' values.
    sea_level : float
        ``Noise + 2 rms``, K.
    flat_slope : float
        CUPID's FlatSlope, K per pixel.

    Returns
    -------
    ndarray of bool
        True for the voxels left out of every clump.
    """
    n = parent.size
    walk_len = np.bincount(first, minlength=n)
    # Heights never decrease along a walk, so the low voxels are its first ones.
    k_sea = np.bincount(first, weights=height <= sea_level, minlength=n)
    a3 = parent[parent[parent]]
    steep = (depth >= 3) & (first[a3] == first)
    steep &= (height[a3] - height) / 3 > flat_slope
    deepest = np.full(n, -1, dtype=depth.dtype)
    np.maximum.at(deepest, first[steep], depth[steep])
    # Position of the first steep 3-step rise ends at its upper voxel.
    k_slope = np.where(deepest >= 0, depth.astype(np.int64) - deepest + 3, n + 1)
    k = np.minimum(np.minimum(k_sea, k_slope), walk_len)
    nflat = np.where(k >= 4, k, 0)
    pos = depth[first] - depth
    return pos < nflat[first]

