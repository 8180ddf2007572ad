"""FellWalker's clump rejections (CUPID's tests) and the final numbering."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .cupid_common import PaddedGrid, number_by_peak


def select(
    data: np.ndarray, labp: np.ndarray, grid: PaddedGrid, *, minpix: int,
    minheight: float, allow_edge: bool, beam: tuple[float, float, float], max_bad: float,
) -> np.ndarray:
    """Apply CUPID's clump rejections; number survivors by decreasing peak.

    Parameters
    ----------
    data : ndarray
        The cube in the working ``(x, y, v)`` view, K; NaN = blank.
    labp : ndarray
        Padded clump ids (-1 in the padding, 0 background).
    grid : PaddedGrid
        Its geometry.
    minpix, minheight, allow_edge, max_bad
        As :func:`~.fellwalker.fellwalker`.
    beam : (float, float, float)
        Smallest FWHM along each axis of the working view, pixels / channels.

    Returns
    -------
    ndarray of int32
        Labels, shape of ``data``: 0 = none, survivors 1..N by decreasing peak.
    """
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

    out = number_by_peak(ok, peak)[inner]
    out[nan] = 0
    return out

