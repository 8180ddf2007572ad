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
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..progress import Progress, ensure_progress
from .base import Detector, Param, hookimpl

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

# CUPID's distances between voxel centres, indexed by the number of non-zero offsets.
_DIST = (0.0, 1.0, 1.4142136, 1.7320508)
# Rows of compact arrays processed at once (bounds the temporaries).
_CHUNK = 1 << 21


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
        int32 labels, 0 = none, clumps 1..N by decreasing peak.
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
        Number of 3x3x3 majority-filter passes over the labels.
    max_bad : float
        Largest fraction of clump voxels that are blank or next to a blank voxel
        along CUPID's first pixel axis (here v, see the module notes).
    progress : Progress, optional
        Progress reporting; ``update`` raises ``Cancelled`` when the user cancels.

    Returns
    -------
    ndarray
        int32 labels, same shape as ``data``: 0 = no clump, clumps 1..N by decreasing
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
    grid = _PaddedGrid(cube.shape, pad)

    progress.update(0.0, "fellwalker: usable voxels")
    usable = _usable_mask(data, noise).T  # the box test does not depend on axis order

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

    parent = _uphill(vflat, pidx, height, cmap, grid, max_jump, progress.span(0.02, 0.4))

    progress.update(0.42, "fellwalker: following walks to their peaks")
    root, depth = _forest(parent)
    progress.update(0.48, "fellwalker: flat starts of walks")
    first = _first_visitor(parent, depth, progress.span(0.48, 0.53))
    keep = ~_flat_start(parent, depth, first, height, noise + 2.0 * rms, flat_slope)

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
        pairs, cols = _interfaces(labp, vals, grid, progress.span(0.55, 0.65))
        vpeak = np.full(nclump + 1, -np.inf)
        np.maximum.at(vpeak, lab, height)
        remap = _merge(nclump, pairs, cols, vpeak, mindip)
        labp.reshape(-1)[pidx] = remap[lab]
    del vals, vflat, height, pidx, lab

    for it in range(max(int(clean_iter), 0)):
        frac = 0.68 + 0.2 * it / max(int(clean_iter), 1)
        progress.update(frac, f"fellwalker: cleaning clump edges ({it + 1}/{clean_iter})")
        _clean(labp, grid, progress.span(frac, frac + 0.2 / clean_iter))

    progress.update(0.9, "fellwalker: rejecting small, low and beam-sized clumps")
    labels = _select(
        cube, labp, grid, minpix=minpix, minheight=minheight, allow_edge=allow_edge,
        beam=(fwhm_beam, fwhm_beam, velo_res), max_bad=max_bad,
    )
    labels = np.ascontiguousarray(labels.T)
    progress.update(1.0, f"fellwalker: {int(labels.max())} clumps")
    return labels


class _PaddedGrid:
    """Geometry of a cube padded by ``pad`` voxels on every side, in C order."""

    def __init__(self, shape: tuple[int, ...], pad: int) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.pad = pad
        self.pshape = tuple(s + 2 * pad for s in self.shape)
        self.psize = int(np.prod(self.pshape))
        self.itype = np.int32 if self.psize < 2**31 - 1 else np.int64
        self.strides = (self.pshape[1] * self.pshape[2], self.pshape[2], 1)
        self.inner = tuple(slice(pad, pad + s) for s in self.shape)

    def offset(self, dz: int, dy: int, dx: int) -> int:
        return dz * self.strides[0] + dy * self.strides[1] + dx

    def box_offsets(self, r: int) -> np.ndarray:
        """Flat offsets of a (2r+1)^3 box in C order (CUPID's scan order)."""
        d = np.arange(-r, r + 1)
        off = d[:, None, None] * self.strides[0] + d[None, :, None] * self.strides[1] + d
        return off.reshape(-1).astype(self.itype)

    def coords(self, pflat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unpadded (z, y, x) of padded flat indices."""
        z, rest = np.divmod(pflat, self.strides[0])
        y, x = np.divmod(rest, self.strides[1])
        return z - self.pad, y - self.pad, x - self.pad


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


def _usable_mask(data: np.ndarray, noise: float) -> np.ndarray:
    """Voxels above ``noise`` that have more than 10% such voxels in their box."""
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


def _uphill(vflat, pidx, height, cmap, grid, max_jump, progress):
    """Compact index of the next voxel on each voxel's walk (itself at a peak)."""
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
    size = min(n, _CHUNK)
    ibuf = np.empty(size, dtype=pidx.dtype)
    nb = np.empty(size, dtype=np.float32)
    g = np.empty(size)
    better = np.empty(size, dtype=bool)
    for lo in range(0, n, _CHUNK):
        progress.update(0.8 * lo / n, "fellwalker: steepest ascent")
        hi = min(lo + _CHUNK, n)
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
    rows = max(1, _CHUNK // box.size)
    for lo in range(0, local_max.size, rows):
        progress.update(0.8 + 0.2 * lo / max(local_max.size, 1))
        lm = local_max[lo:lo + rows]
        vals = vflat[pidx[lm][:, None] + box[None, :]]
        target = pidx[lm] + box[np.argmax(vals, axis=1)]
        parent[lm] = cmap[target]
    progress.update(1.0)
    return parent


def _forest(parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak (root) and number of steps to it for every voxel, by pointer jumping."""
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


def _first_visitor(parent: np.ndarray, depth: np.ndarray, progress: Progress) -> np.ndarray:
    """Lowest compact index in each voxel's up-hill subtree.

    In CUPID's scan every voxel is first reached by the walk that starts at the lowest
    array index among the voxels whose walks pass through it; that walk owns it.
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


def _flat_start(parent, depth, first, height, sea_level, flat_slope):
    """True for voxels in the flat low-level start of the walk that owns them.

    A walk owns the voxels with the same ``first``; positions along it count from its
    start.  CUPID ends the flat start at the first position ``i`` where the height is
    above sea level, or (``i >= 3``) where the rise over the last 3 steps divided by 3
    exceeds ``flat_slope``; the start is dropped only if that is 4 or more voxels long
    (or the whole walk, when the walk never gets steep and is 4+ voxels long).
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


def _interfaces(labp, vals, grid, progress):
    """Lowest point of the interface between each pair of adjacent clumps.

    The interface is every pair of touching voxels (26-connected) of the two clumps;
    its height at a pair is the mean of the two values, as in CUPID.
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


def _merge(nclump: int, pairs: np.ndarray, cols: np.ndarray, vpeak: np.ndarray,
           mindip: float) -> np.ndarray:
    """MinDip merging; returns a lookup table old clump id -> new clump id.

    As in CUPID, clumps are visited in id order, repeatedly until nothing changes,
    and a clump is moved into the neighbour with the highest col when its peak is
    less than ``mindip`` above that col; the merged clump inherits the neighbours.
    The col between two clumps is the lowest point of their interface (CUPID's
    description of MinDip: every interface voxel lies above PEAK1 - MinDip).
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


def _clean(labp: np.ndarray, grid: _PaddedGrid, progress: Progress) -> None:
    """One CleanIter pass, in place: each voxel takes the commonest label of its box.

    Ties go to the label met first in scan order, as in CUPID; the box is cut at the
    cube edges (padding holds -1, which never votes).  A voxel whose own label fills
    14 or more of its 27 box voxels keeps it, so only the others are voted on.
    """
    p = grid.pad
    shape = grid.shape
    centre = labp[grid.inner]
    own = np.zeros(shape, dtype=np.uint8)
    for dz in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                shifted = (
                    slice(p + dz, p + dz + shape[0]),
                    slice(p + dy, p + dy + shape[1]),
                    slice(p + dx, p + dx + shape[2]),
                )
                own += centre == labp[shifted]
    idx = np.flatnonzero(own < 14)
    del own
    progress.update(0.3)
    z, rest = np.divmod(idx, shape[1] * shape[2])
    y, x = np.divmod(rest, shape[2])
    pos = ((z + p) * grid.strides[0] + (y + p) * grid.strides[1] + (x + p)).astype(grid.itype)
    del z, y, x, rest, idx
    box = grid.box_offsets(1)
    flat = labp.reshape(-1)
    new = np.empty(pos.size, dtype=labp.dtype)
    rows = max(1, _CHUNK // 8)
    for lo in range(0, pos.size, rows):
        progress.update(0.3 + 0.7 * lo / max(pos.size, 1))
        new[lo:lo + rows] = _mode_rows(flat[pos[lo:lo + rows, None] + box[None, :]])
    flat[pos] = new
    progress.update(1.0)


def _mode_rows(votes: np.ndarray) -> np.ndarray:
    """Most common value >= 0 in each row, ties to the value seen first in the row."""
    m = votes.shape[0]
    best_val = np.zeros(m, dtype=votes.dtype)
    best_cnt = np.zeros(m, dtype=np.int64)
    rows = np.arange(m)
    avail = votes >= 0
    while rows.size:
        # Candidates in order of first appearance; a later one needs strictly more votes.
        cand = votes[np.arange(rows.size), np.argmax(avail, axis=1)]
        same = votes == cand[:, None]
        cnt = same.sum(axis=1)
        win = cnt > best_cnt[rows]
        best_cnt[rows[win]] = cnt[win]
        best_val[rows[win]] = cand[win]
        avail &= ~same
        go = avail.sum(axis=1) > best_cnt[rows]
        if not go.all():
            rows, votes, avail = rows[go], votes[go], avail[go]
    return best_val


def _select(data, labp, grid, *, minpix, minheight, allow_edge, beam, max_bad):
    """Apply CUPID's clump rejections; number survivors by decreasing peak."""
    shape = grid.shape
    inner = labp[grid.inner]
    flat = labp.reshape(-1)
    pos = np.flatnonzero(flat > 0)
    lab = flat[pos]
    nclump = int(lab.max()) if lab.size else 0
    if nclump == 0:
        return np.zeros(shape, dtype=np.int32)
    z, y, x = grid.coords(pos)
    del pos
    nb = nclump + 1
    vals = data[z, y, x].astype(np.float64)
    good = np.isfinite(vals)
    w = np.where(good, vals, 0.0)

    count = np.bincount(lab, minlength=nb)
    peak = np.full(nb, -np.inf)
    np.maximum.at(peak, lab[good], vals[good])
    ok = (count > minpix) & (peak >= minheight)
    lo = np.zeros((nb, 3), dtype=np.int64)
    hi = np.zeros((nb, 3), dtype=np.int64)
    for i, box in enumerate(ndi.find_objects(inner, max_label=nclump), start=1):
        if box is not None:
            lo[i] = [sl.start for sl in box]
            hi[i] = [sl.stop - 1 for sl in box]
    ok &= np.all(hi > lo, axis=1)  # CUPID rejects clumps one voxel thick on any axis
    if not allow_edge:
        # CUPID's test, in 0-based indices: lower bound < 2 or upper bound at the end.
        ok &= np.all((lo >= 2) & (hi < np.asarray(shape) - 1), axis=1)

    # MaxBad (CUPID: blank clump voxels, plus good ones with a blank neighbour along its
    # first pixel axis, the last axis of the working view).
    nan = np.isnan(data)
    if nan.any():
        inside = (x > 0) & (x < shape[2] - 1)
        side = np.zeros(lab.size, dtype=bool)
        side[inside] = nan[z[inside], y[inside], x[inside] - 1] | nan[
            z[inside], y[inside], x[inside] + 1]
        bad = np.bincount(lab, weights=~good | side, minlength=nb)
        ok &= ~(bad > max_bad * count)

    # Beam test: intensity-weighted variance along each axis must exceed FWHM^2/(8 ln 2).
    s = np.bincount(lab, weights=w, minlength=nb)
    ok &= s != 0
    with np.errstate(invalid="ignore", divide="ignore"):
        for c, fwhm in zip((z, y, x), beam, strict=True):
            i = c.astype(np.float64) + 1.0
            wi = w * i
            m1 = np.bincount(lab, weights=wi, minlength=nb) / s
            m2 = np.bincount(lab, weights=wi * i, minlength=nb) / s
            var = m2 - m1 * m1
            var = np.where(var > 0, var, 0.25)
            ok &= var - fwhm * fwhm / 5.5451774 > 0
    ok[0] = False
    del z, y, x, vals, good, w, lab

    ids = np.flatnonzero(ok)
    ids = ids[np.argsort(-peak[ids], kind="stable")]
    lut = np.zeros(nb, dtype=np.int32)
    lut[ids] = np.arange(1, ids.size + 1, dtype=np.int32)
    out = lut[inner]
    out[nan] = 0
    return out


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
