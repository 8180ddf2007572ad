"""ClumpFind's clump rejections (CUPID's tests)."""

from __future__ import annotations

import numpy as np

from .clumpfind_scan import Clumps


def keep_mask(
    vox: np.ndarray, own: np.ndarray, data: np.ndarray, clumps: Clumps, minpix: int,
    allow_edge: bool, maxbad: float,
) -> np.ndarray:
    """Which clump ids (index = id) survive CUPID's rejection tests.

    Parameters
    ----------
    vox : ndarray
        Flat indices of all assigned voxels.
    own : ndarray of int32
        Their clump ids.
    data : ndarray
        The ``(v, y, x)`` cube; NaN = blank.
    clumps : Clumps
        All clumps found.
    minpix : int
        Fewest voxels in a kept clump.
    allow_edge : bool
        Keep clumps that touch an edge of the array.
    maxbad : float
        Largest allowed fraction of clump voxels next to a blank voxel.

    Returns
    -------
    ndarray of bool
        ``keep[id]`` for ids 0..N (0 is never kept).
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
