"""ClumpFind's view of one contour band: neighbours, adjoining clumps and regions.

The band is the set of voxels between one contour level and the next that no clump
holds yet.  Here its voxels' neighbours are examined once (which existing clump each
voxel adjoins, by CUPID's cupidCFNebs rule), the band is split into connected regions,
and each region's peak is found.  See :mod:`.clumpfind` for the algorithm.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .cupid_common import PaddedGrid

#: Voxels whose neighbourhoods are gathered at once (memory: 26 x 4 bytes each).
_CHUNK = 1 << 18

#: A band is labelled in its bounding box when that box is at most this many times
#: larger than the band; otherwise as a sparse neighbour graph.
_DENSE_BOX = 24

# Neighbour offsets as (axis 1, axis 2, axis 3) steps in CUPID's axis numbering, in the
# order CUPID examines them: the first adjoining clump met wins ties in peak distance.
FACE = ((-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, -1), (0, 0, 1))
EDGE = ((1, -1, 0), (1, 1, 0), (-1, -1, 0), (-1, 1, 0),
         (-1, 0, 1), (1, 0, 1), (0, -1, 1), (0, 1, 1),
         (-1, 0, -1), (1, 0, -1), (0, -1, -1), (0, 1, -1))
CORNER = ((1, -1, 1), (1, 1, 1), (-1, -1, 1), (-1, 1, 1),
           (1, -1, -1), (1, 1, -1), (-1, -1, -1), (-1, 1, -1))


def neighbour_steps(naxis: int, grid: PaddedGrid) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour steps (numpy axes; CUPID's axis 1 is v, axis 0 here) and flat offsets.

    Parameters
    ----------
    naxis : {1, 2, 3}
        CUPID's Naxis: faces only, faces and edges, or all 26 neighbours.
    grid : PaddedGrid
        The padded assignment array the offsets index (padding at least 1).

    Returns
    -------
    steps : ndarray, shape (k, 3)
        ``(dv, dy, dx)`` in the order CUPID examines them.
    offsets : ndarray
        The same steps as flat offsets in the padded array.
    """
    steps = np.array(FACE + (EDGE if naxis >= 2 else ()) + (CORNER if naxis == 3 else ()))
    return steps, steps @ np.array(grid.strides)


class Clumps:
    """Growing per-clump arrays: peak position and value, indexed by clump id (0 unused)."""

    def __init__(self) -> None:
        self.peak = np.zeros((1, 3), dtype=np.int64)
        self.vpeak = np.full(1, -np.inf, dtype=np.float64)

    @property
    def count(self) -> int:
        """Number of clumps so far."""
        return self.vpeak.size - 1

    def add(self, peak: np.ndarray, vpeak: np.ndarray) -> np.ndarray:
        """Append clumps (peak positions ``(k, 3)`` and values); return their new ids."""
        first = self.vpeak.size
        self.peak = np.concatenate([self.peak, peak.astype(np.int64)])
        self.vpeak = np.concatenate([self.vpeak, vpeak.astype(np.float64)])
        return np.arange(first, self.vpeak.size, dtype=np.int32)


def scan_band(
    pidx: np.ndarray, coords: np.ndarray, flat_ipa: np.ndarray,
    neighbours: tuple[np.ndarray, np.ndarray], clumps: Clumps, want_edges: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Look at every voxel's neighbours once: adjoining clumps, and band-internal links.

    The adjoining clump CUPID deems nearest follows cupidCFNebs: neighbours are examined
    in CUPID's order; the first clump met is taken; a later one replaces it only when
    its peak is strictly nearer, both distances being measured from the neighbour voxel
    being examined (not from the voxel itself), and the distance of the clump in hand is
    measured once, at the first neighbour that offers a rival.

    Parameters
    ----------
    pidx : ndarray
        The voxels' flat indices into ``flat_ipa``.
    coords : ndarray, shape (n, 3)
        The voxels' positions.
    flat_ipa : ndarray of int32
        The padded assignment array, flat: clump ids > 0, the band's own voxels marked
        ``-1 - position``, 0 elsewhere.
    neighbours : (ndarray, ndarray)
        Steps and flat offsets from :func:`neighbour_steps`.
    clumps : Clumps
        The clumps so far.
    want_edges : bool
        Also return the pairs of band voxels that are neighbours (each pair once).

    Returns
    -------
    near : ndarray of int32
        Per voxel, the adjoining clump CUPID deems nearest (0 = none).
    rows, cols : ndarray or None
        The neighbour pairs (positions in the band) with ``want_edges``, else ``None``.
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
    nb: np.ndarray, coords: np.ndarray, steps: np.ndarray, clumps: Clumps,
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



def dense_band(coords: np.ndarray) -> bool:
    """Label in the bounding box (True) or as a sparse neighbour graph (False)?

    Parameters
    ----------
    coords : ndarray, shape (n, 3)
        The band's voxel positions.

    Returns
    -------
    bool
        True when the bounding box is at most ``_DENSE_BOX`` times the band's size.
    """
    extent = coords.max(axis=0) - coords.min(axis=0) + 1
    return bool(np.prod(extent, dtype=np.float64) <= _DENSE_BOX * coords.shape[0])


def components(
    coords: np.ndarray, structure: np.ndarray, edges: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, int]:
    """Connected components (ids 0..n-1) of one band's voxels.

    A band that fills a good part of its bounding box is labelled there with
    ``ndimage.label``; a sparse one (typical of the upper levels, scattered over the
    whole cube) from its neighbour pairs ``edges``, at a cost that follows its size.

    Parameters
    ----------
    coords : ndarray, shape (n, 3)
        The band's voxel positions.
    structure : ndarray of bool
        The 3x3x3 connectivity (from CUPID's Naxis).
    edges : (ndarray, ndarray) or None
        Pairs of neighbouring band voxels (positions in ``coords``), from
        :func:`scan_band`; ``None`` to label in the bounding box.

    Returns
    -------
    comp : ndarray
        Region of each voxel, 0..n-1.
    n : int
        Number of regions.
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


def region_peaks(comp: np.ndarray, ncomp: int, values: np.ndarray,
                 scan: np.ndarray) -> np.ndarray:
    """Index of each region's peak: its largest value, first in CUPID's scan among equals.

    (CUPID itself breaks such ties by the order in which partial regions merged during
    its scan; exactly equal maxima within one region are rare in real data.)

    Parameters
    ----------
    comp : ndarray
        Region of each band voxel (0..ncomp-1).
    ncomp : int
        Number of regions.
    values : ndarray
        The band voxels' values.
    scan : ndarray
        Their positions in CUPID's scan (:func:`scan_key`).

    Returns
    -------
    ndarray of int64
        For each region, the index (into the band) of its peak voxel.
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


def scan_key(coords: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Position in CUPID's scan, v fastest (pycupid passes the (v, y, x) array in F order).

    Parameters
    ----------
    coords : ndarray, shape (n, 3)
        ``(v, y, x)`` voxel positions.
    shape : (int, int, int)
        The cube's shape.

    Returns
    -------
    ndarray
        Scan position of each voxel.
    """
    return (coords[:, 2] * shape[1] + coords[:, 1]) * shape[0] + coords[:, 0]
