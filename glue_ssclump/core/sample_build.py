"""One candidate sample: crop, shrink, centre, fill and normalise (METHOD.md section 1).

:func:`make_sample` turns a candidate's bounding-box crop into the ``(30, 30, 30)``
array the network sees; the background it is placed on comes from
:mod:`~glue_ssclump.core.sample_noise`, and the whole recipe is described in
:mod:`~glue_ssclump.core.samples`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

__all__ = ["SAMPLE_SIZE", "bounding_boxes", "make_sample", "zoom_cubic"]

SAMPLE_SIZE = 30


def bounding_boxes(mask: np.ndarray, max_label: int | None = None) -> list[tuple[slice, ...] | None]:
    """Bounding boxes of every label 1..max_label (``None`` for absent ids).

    A thin wrapper of :func:`scipy.ndimage.find_objects` (one pass over the mask, fast
    for tens of thousands of candidates); element ``i`` is the box of label ``i + 1``.
    """
    mask = np.asarray(mask)
    if not np.issubdtype(mask.dtype, np.integer):
        raise TypeError(f"mask must be integer (clump ids), got dtype {mask.dtype}")
    if max_label is None:
        max_label = int(mask.max()) if mask.size else 0
    if max_label <= 0:
        return []
    return ndimage.find_objects(mask, max_label=max_label)


@lru_cache(maxsize=512)
def _spline_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` matrix of 1-D ``scipy.ndimage.zoom(order=3)`` from n_in to n_out."""
    w = ndimage.zoom(np.eye(n_in), (n_out / n_in, 1.0), order=3)
    w.flags.writeable = False
    return w


def zoom_cubic(values: np.ndarray, target: tuple[int, ...]) -> np.ndarray:
    """``scipy.ndimage.zoom(values, target / shape, order=3)``, evaluated separably.

    The cubic B-spline zoom is a tensor product of one 1-D linear map per axis, so it
    is applied as one small matrix product per axis (the matrices are cached).  The
    result equals ``ndimage.zoom`` to rounding (1e-15) and is much faster for the
    crops of large candidates; ``einsum`` rather than BLAS keeps it single-threaded
    (a threaded BLAS on small matrices is slow on busy machines).
    """
    out = np.asarray(values, dtype=np.float64)
    for axis in np.argsort(out.shape, kind="stable")[::-1]:
        n_in, n_out = out.shape[axis], int(target[axis])
        if n_in == n_out:
            continue
        moved = np.moveaxis(out, axis, 0)
        out = np.moveaxis(np.einsum("ai,i...->a...", _spline_matrix(n_in, n_out), moved), 0, axis)
    return out


def _shrunk(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shrink a crop whose largest side exceeds SAMPLE_SIZE to fit (METHOD.md section 1).

    Values: cubic spline (``ndimage.zoom`` order 3, see :func:`zoom_cubic`); mask:
    nearest neighbour on the same grid.
    """
    shape = np.array(values.shape)
    factor = SAMPLE_SIZE / shape.max()
    target = tuple(int(t) for t in np.maximum(1, np.round(shape * factor)))
    zooms = np.array(target) / shape
    values = zoom_cubic(values, target)
    small = ndimage.zoom(mask.view(np.uint8), zooms, order=0).astype(bool)
    if not small.any() and mask.any():
        # a thin candidate the nearest-neighbour grid stepped over: keep its peak voxel
        small[np.unravel_index(np.argmax(values), small.shape)] = True
    return values.astype(np.float32), small


def make_sample(
    crop: np.ndarray,
    mask: np.ndarray,
    noise: np.ndarray,
    *,
    normalise: bool = True,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Build one sample from a candidate's bounding-box crop.

    Parameters
    ----------
    crop : ndarray
        ``data`` over the candidate's bounding box, ``(v, y, x)``, K (NaN allowed).
    mask : ndarray of bool
        The candidate's voxels in that box; NaN voxels of ``crop`` are dropped from it.
    noise : ndarray
        ``(30, 30, 30)`` background in K (already scaled by the rms).
    normalise : bool
        Min-max normalise to [0, 1] (the sample the network sees). With ``False`` the
        candidate's voxels keep their K values (useful for inspection and tests).
    out : ndarray, optional
        ``(30, 30, 30)`` float32 array to write into.

    Returns
    -------
    ndarray
        ``(30, 30, 30)`` float32.
    """
    s = SAMPLE_SIZE
    if out is None:
        out = np.empty((s, s, s), dtype=np.float32)
    out[...] = noise
    _place(crop, mask, out)
    if normalise:
        _normalise(out[None])
    return out


def _place(crop: np.ndarray, mask: np.ndarray, out: np.ndarray) -> None:
    """Write the candidate's voxels (shrunk if needed) centred into ``out`` (30^3)."""
    s = SAMPLE_SIZE
    mask = np.asarray(mask, dtype=bool) & np.isfinite(crop)
    values = crop
    if max(crop.shape) > s:
        values, mask = _shrunk(np.where(mask, crop, 0), mask)
    before = [(s - d) // 2 for d in values.shape]
    region = out[tuple(slice(b, b + d) for b, d in zip(before, values.shape, strict=True))]
    region[mask] = values[mask]


def _normalise(batch: np.ndarray) -> None:
    """Min-max normalise each sample of ``batch`` (n, ...) to [0, 1], in place."""
    axes = tuple(range(1, batch.ndim))
    lo = batch.min(axis=axes, keepdims=True)
    span = batch.max(axis=axes, keepdims=True) - lo
    batch -= lo
    # a constant sample (span 0) is left at all zeros; multiplying by a precomputed
    # reciprocal avoids a masked divide over the whole batch
    scale = np.zeros_like(span)
    np.divide(1.0, span, out=scale, where=span > 0)
    batch *= scale
    np.minimum(batch, 1.0, out=batch)  # x * (1 / span) may round one ulp above 1
