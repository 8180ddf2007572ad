"""FellWalker's MinDip step: the cols between adjacent clumps, and merging across them."""

from __future__ import annotations

from operator import itemgetter

import numpy as np

from ..progress import Progress
from .cupid_common import PaddedGrid


def interfaces(
    labp: np.ndarray, vals: np.ndarray, grid: PaddedGrid, progress: Progress,
) -> tuple[np.ndarray, np.ndarray]:
    """Lowest point of the interface between each pair of adjacent clumps.

    The interface is every pair of touching voxels (26-connected) of the two clumps;
    its height at a pair is the mean of the two values, as in CUPID.

    Parameters
    ----------
    labp : ndarray
        Padded clump ids: -1 in the padding, 0 background.
    vals : ndarray of float32
        The padded cube.
    grid : PaddedGrid
        Their geometry.
    progress : Progress
        Progress reporting and cancellation.

    Returns
    -------
    pairs : ndarray of int64, shape (m, 2)
        Adjacent clump ids, lower first, each pair once.
    cols : ndarray of float64
        The lowest interface height of each pair.
    """
    lflat = labp.reshape(-1)
    vflat = vals.reshape(-1)
    inclump = lflat > 0
    size = lflat.size
    # Flat offsets are safe: the padding (label -1) separates rows and planes.
    forward = [off for off in grid.box_offsets(1).tolist() if off > 0]
    found_a, found_b, found_c = [], [], []
    for k, off in enumerate(forward):
        progress.update(k / len(forward))
        m = lflat[:size - off] != lflat[off:]
        m &= inclump[:size - off]
        m &= inclump[off:]
        pa = np.flatnonzero(m)
        if pa.size == 0:
            continue
        pb = pa + off
        found_a.append(lflat[pa])
        found_b.append(lflat[pb])
        found_c.append(0.5 * (vflat[pa].astype(np.float64) + vflat[pb]))
    progress.update(1.0)
    if not found_a:
        return np.empty((0, 2), dtype=np.int64), np.empty(0)
    a = np.concatenate(found_a).astype(np.int64)
    b = np.concatenate(found_b).astype(np.int64)
    c = np.concatenate(found_c)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = lo * (int(hi.max()) + 1) + hi
    order = np.argsort(key)
    key = key[order]
    start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    low = np.minimum.reduceat(c[order], start)
    first = order[start]
    return np.stack([lo[first], hi[first]], axis=1), low


def merge(nclump: int, pairs: np.ndarray, cols: np.ndarray, vpeak: np.ndarray,
           mindip: float) -> np.ndarray:
    """MinDip merging; returns a lookup table old clump id -> new clump id.

    As in CUPID, clumps are visited in id order, repeatedly until nothing changes,
    and a clump is moved into the neighbour with the highest col when its peak is
    less than ``mindip`` above that col; the merged clump inherits the neighbours.
    The col between two clumps is the lowest point of their interface (CUPID's
    description of MinDip: every interface voxel lies above PEAK1 - MinDip).

    Parameters
    ----------
    nclump : int
        Clump ids are 1..nclump.
    pairs, cols : ndarray
        Adjacent clumps and their cols, from :func:`interfaces`.
    vpeak : ndarray
        Peak value of each clump id (index 0 unused).
    mindip : float
        CUPID's MinDip, K.

    Returns
    -------
    ndarray of int32
        ``remap[old_id]`` is the id of the clump it ends up in.
    """
    nebs: list[dict[int, float]] = [{} for _ in range(nclump + 1)]
    for (a, b), c in zip(pairs.tolist(), cols.tolist(), strict=True):
        nebs[a][b] = c
        nebs[b][a] = c
    vpeak = vpeak.tolist()
    into = list(range(nclump + 1))
    merged = True
    while merged:
        merged = False
        for c1 in range(1, nclump + 1):
            n1 = nebs[c1]
            if not n1:
                continue
            c2, top = max(n1.items(), key=itemgetter(1))
            if not vpeak[c1] < top + mindip:
                continue
            merged = True
            n2 = nebs[c2]
            del n2[c1]
            for nb, col in n1.items():
                if nb == c2:
                    continue
                # The interface with the union is the union of the interfaces.
                other = nebs[nb]
                del other[c1]
                joint = min(col, n2.get(nb, col))
                other[c2] = joint
                n2[nb] = joint
            vpeak[c2] = max(vpeak[c2], vpeak[c1])
            nebs[c1] = {}
            into[c1] = c2
    remap = np.asarray(into, dtype=np.int32)
    while True:
        nxt = remap[remap]
        if np.array_equal(nxt, remap):
            return remap
        remap = nxt

