"""Candidate samples: one 30 x 30 x 30 cube per clump candidate (METHOD.md section 1).

A sample is built from the cube ``data`` (``(v, y, x)``, K) and a label mask:

1. cut the candidate's voxels (``data`` where ``labels == clump_id``, zero elsewhere;
   NaN counts as outside the mask) to the mask's bounding box;
2. if the largest side ``d`` exceeds 30, shrink uniformly by ``30 / d`` with a cubic
   spline (:func:`scipy.ndimage.zoom` order 3, evaluated separably by
   :func:`zoom_cubic`; the mask itself with nearest neighbour);
3. place it centred in a 30^3 cube (``(30 - d) // 2`` before, the rest after);
4. fill every voxel outside the (shrunk, placed) mask with background noise of the
   cube's own rms and lag-1 velocity correlation (AR(1) along the velocity axis);
5. min-max normalise the sample to [0, 1].

The axes stay ``(v, y, x)``; a sample is a ``(1, 30, 30, 30)`` float32 array.

Background noise.  The reference code adds one fixed 30^3 noise cube (std ~0.1 K) to
every sample.  Here the noise matches the cube: a unit-variance AR(1) noise *bank*
(``NOISE_BANK_SHAPE``, white across the sky, lag-1 correlation ``lag1`` along velocity)
is drawn once per ``(seed, lag1)``, and every candidate takes its own 30^3 block of it,
scaled by the rms: block offset, flips of each axis, a y/x transpose and the sign are
derived from a hash of ``(seed, clump_id)``.  That keeps every sample reproducible and
independent of batch order and size, gives about 5 million distinct noise blocks (the
reference had one) and costs a copy instead of 27,000 fresh normal draws per sample
(drawing them took longer than building all the rest of a sample).
"""

from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.signal import lfilter

from .progress import Progress, ensure_progress

__all__ = [
    "SAMPLE_SIZE",
    "NOISE_BANK_SHAPE",
    "ArraySamples",
    "CandidateSamples",
    "SampleSource",
    "ar1_noise",
    "bounding_boxes",
    "zoom_cubic",
    "make_sample",
    "noise_lag1",
]

SAMPLE_SIZE = 30
#: Shape (v, y, x) of the unit-variance AR(1) noise bank samples draw their background from.
NOISE_BANK_SHAPE = (64, 96, 96)
#: Lag-1 velocity correlation used when the cube has too few emission-free voxels.
DEFAULT_LAG1 = 0.4
#: ``cache='auto'`` keeps a float16 cache up to this many candidates (54 kB each).
AUTO_CACHE_MAX = 10_000

_MAD_TO_STD = 1.482602218505602
_LAG1_SLAB_VOXELS = 4_000_000
_LAG1_MAX_PAIRS = 4_000_000


# --------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------
def _mad_std(values: np.ndarray) -> float:
    return float(_MAD_TO_STD * np.median(np.abs(values - np.median(values))))


def noise_lag1(
    data: np.ndarray,
    rms: float,
    *,
    max_local_mean: float = 1.0,
    min_pairs: int = 1000,
    default: float = DEFAULT_LAG1,
) -> float:
    """Lag-1 correlation of the noise along the velocity axis, robustly.

    Pairs of voxels adjacent in velocity are used where the local mean of the cube
    (a 3 x 5 x 5 box average) is below ``max_local_mean`` rms, i.e. where there is
    no more than faint emission; selecting on a 75-voxel mean instead of on the
    voxel values themselves avoids truncating the noise distribution (which would
    bias the correlation low).  With ``S`` and ``D`` the MAD-based standard deviations
    of the pair sums and differences, ``rho = (S^2 - D^2) / (S^2 + D^2)``; the medians
    ignore the few pairs still on a line wing.

    Parameters
    ----------
    data : ndarray
        Cube ``(v, y, x)`` in K; NaN = blank.
    rms : float
        Noise rms in K.
    max_local_mean : float
        Emission-free-ish threshold on the local mean, in units of ``rms``.
    min_pairs : int
        Fewer usable pairs than this returns ``default``.
    default : float
        Value returned when the correlation cannot be measured.

    Returns
    -------
    float
        The lag-1 correlation, clipped to [-0.95, 0.95].
    """
    data = np.asarray(data)
    if data.ndim != 3 or data.shape[0] < 2 or not np.isfinite(rms) or rms <= 0:
        return float(default)
    # slabs of rows (with a 2-row margin for the 5x5 box) bound the working memory
    ny = data.shape[1]
    slab = max(1, _LAG1_SLAB_VOXELS // max(1, data.shape[0] * data.shape[2]))
    stride = max(1, int(np.ceil(data.size / _LAG1_MAX_PAIRS)))
    sums, diffs = [], []
    for y0 in range(0, ny, slab):
        lo, hi = max(0, y0 - 2), min(ny, y0 + slab + 2)
        block = np.asarray(data[:, lo:hi], dtype=np.float32)
        finite = np.isfinite(block)
        filled = np.where(finite, block, np.float32(0.0))
        local = ndimage.uniform_filter(filled, size=(3, 5, 5), mode="nearest")
        frac = ndimage.uniform_filter(finite.astype(np.float32), size=(3, 5, 5),
                                      mode="nearest")
        quiet = finite & (frac > 0.5) & (local < max_local_mean * rms * np.maximum(frac, 1e-6))
        del local, frac, filled
        inner = slice(y0 - lo, y0 - lo + min(slab, ny - y0))
        quiet = quiet[:, inner]
        block = block[:, inner]
        pair = np.flatnonzero(quiet[:-1] & quiet[1:])[::stride]
        a = block[:-1].ravel()[pair].astype(np.float64)
        b = block[1:].ravel()[pair].astype(np.float64)
        sums.append(a + b)
        diffs.append(a - b)
    total = sum(len(x) for x in sums)
    if total * stride < min_pairs:
        return float(default)
    s2 = _mad_std(np.concatenate(sums)) ** 2
    d2 = _mad_std(np.concatenate(diffs)) ** 2
    if s2 + d2 <= 0:
        return float(default)
    return float(np.clip((s2 - d2) / (s2 + d2), -0.95, 0.95))


def ar1_noise(
    shape: tuple[int, ...], lag1: float, rng: np.random.Generator, axis: int = 0
) -> np.ndarray:
    """Unit-variance stationary AR(1) Gaussian noise, correlated along ``axis``.

    ``x[0] = e[0]``, ``x[t] = lag1 * x[t-1] + sqrt(1 - lag1^2) * e[t]``: every element
    has variance 1 and neighbours along ``axis`` have correlation ``lag1``.

    Returns
    -------
    ndarray
        float32 array of ``shape``.
    """
    if not -1.0 < lag1 < 1.0:
        raise ValueError(f"lag1 must be in (-1, 1), got {lag1}")
    e = rng.standard_normal(shape, dtype=np.float32)
    if lag1 == 0.0:
        return e
    c = np.sqrt(1.0 - lag1 * lag1)
    e = np.moveaxis(e, axis, 0)
    e[0] /= c
    x = lfilter([c], [1.0, -lag1], e, axis=0)
    return np.ascontiguousarray(np.moveaxis(x, 0, axis), dtype=np.float32)


def _noise_bank(seed: int, lag1: float, shape: tuple[int, int, int]) -> np.ndarray:
    rng = np.random.default_rng([int(seed), 0x6E6F697365])  # "noise"
    bank = ar1_noise(shape, lag1, rng, axis=0)
    bank -= bank.mean()
    bank /= bank.std()
    return bank


_U64 = np.uint64


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, elementwise on uint64 (wrapping arithmetic)."""
    x = x + _U64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def _noise_draws(seed: int, clump_ids: np.ndarray, bank_shape: tuple[int, int, int]) -> np.ndarray:
    """Per-candidate (ov, oy, ox, flags) from a hash of (seed, clump_id); shape (n, 4)."""
    ids = np.asarray(clump_ids).astype(np.int64).view(np.uint64)
    base = _mix64(np.array([int(seed) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    h = _mix64(ids ^ base)
    out = np.empty((ids.size, 4), dtype=np.int64)
    for k, n in enumerate(bank_shape):
        h = _mix64(h)
        out[:, k] = (h % _U64(n - SAMPLE_SIZE + 1)).astype(np.int64)
    out[:, 3] = (_mix64(h) >> _U64(59)).astype(np.int64)  # 5 random bits
    return out


def _noise_block(bank: np.ndarray, draw: np.ndarray) -> np.ndarray:
    ov, oy, ox, flags = (int(v) for v in draw)
    s = SAMPLE_SIZE
    block = bank[ov:ov + s, oy:oy + s, ox:ox + s]
    if flags & 1:
        block = block[::-1]
    if flags & 2:
        block = block[:, ::-1]
    if flags & 4:
        block = block[:, :, ::-1]
    if flags & 8:
        block = block.transpose(0, 2, 1)
    if flags & 16:
        block = -block
    return block


# --------------------------------------------------------------------------------------
# One sample
# --------------------------------------------------------------------------------------
def bounding_boxes(labels: np.ndarray, max_label: int | None = None) -> list[tuple[slice, ...] | None]:
    """Bounding boxes of every label 1..max_label (``None`` for absent ids).

    A thin wrapper of :func:`scipy.ndimage.find_objects` (one pass over the mask, fast
    for tens of thousands of candidates); element ``i`` is the box of label ``i + 1``.
    """
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be an integer mask, got dtype {labels.dtype}")
    if max_label is None:
        max_label = int(labels.max()) if labels.size else 0
    if max_label <= 0:
        return []
    return ndimage.find_objects(labels, max_label=max_label)


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
    result equals ``ndimage.zoom`` to rounding (1e-15) and is 5-20x faster for the
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
    # a constant sample (span 0) is left at all zeros; (a masked divide is ~10x slower)
    scale = np.zeros_like(span)
    np.divide(1.0, span, out=scale, where=span > 0)
    batch *= scale
    np.minimum(batch, 1.0, out=batch)  # x * (1 / span) may round one ulp above 1


# --------------------------------------------------------------------------------------
# Sample sources
# --------------------------------------------------------------------------------------
class SampleSource(ABC):
    """What training and inference consume: ``len(src)`` samples with clump ids ``src.ids``.

    ``get(index)`` returns ``(len(index), 1, 30, 30, 30)`` float32 in [0, 1];
    ``batches`` iterates over them in chunks (optionally producing the next chunk in a
    background thread while the caller works on the current one).
    """

    ids: np.ndarray
    #: Batches produced ahead by a background thread when ``batches(prefetch=None)``.
    default_prefetch: int = 0

    def __len__(self) -> int:
        return int(len(self.ids))

    @abstractmethod
    def get(self, index: Any) -> np.ndarray:
        """Samples at positions ``index`` (not clump ids): ``(n, 1, 30, 30, 30)`` float32."""

    def batches(
        self,
        batch_size: int,
        index: Any = None,
        progress: Progress | None = None,
        *,
        prefetch: int | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Iterate ``(index_chunk, samples)`` over ``index`` (default: all) in order.

        Parameters
        ----------
        batch_size : int
            Samples per batch (the last one may be shorter).
        index : array of int, optional
            Positions to visit, in this order; default ``arange(len(self))``.
        progress : Progress, optional
            Updated once per batch; cancelling stops the iteration (``Cancelled``).
        prefetch : int, optional
            Batches a background thread builds ahead (0 = build on demand). The
            generator's memory is about ``(prefetch + 2) * batch_size * 108 kB``.

        Yields
        ------
        (ndarray, ndarray)
            The positions (int64) and their samples ``(n, 1, 30, 30, 30)`` float32.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        index = np.arange(len(self)) if index is None else _as_index(index, len(self))
        chunks = [index[i:i + batch_size] for i in range(0, index.size, batch_size)]
        progress = ensure_progress(progress)
        prefetch = self.default_prefetch if prefetch is None else int(prefetch)
        progress.update(0.0)
        if prefetch <= 0:
            for k, chunk in enumerate(chunks):
                batch = self.get(chunk)
                yield chunk, batch
                progress.update((k + 1) / len(chunks))
            return
        yield from self._prefetched(chunks, prefetch, progress)

    def _prefetched(
        self, chunks: list[np.ndarray], prefetch: int, progress: Progress
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        q: queue.Queue = queue.Queue(maxsize=prefetch)
        stop = threading.Event()

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def worker() -> None:
            try:
                for chunk in chunks:
                    if stop.is_set() or progress.cancelled:
                        return
                    if not put((chunk, self.get(chunk), None)):
                        return
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                put((None, None, exc))
                return
            put(None)

        thread = threading.Thread(target=worker, name="ssclump-samples", daemon=True)
        thread.start()
        try:
            for k in range(len(chunks)):
                while True:
                    progress.check()
                    try:
                        item = q.get(timeout=0.1)
                        break
                    except queue.Empty:
                        if not thread.is_alive() and q.empty():
                            raise RuntimeError("sample generation thread stopped") from None
                if item is None:
                    break
                chunk, batch, exc = item
                if exc is not None:
                    raise exc
                yield chunk, batch
                progress.update((k + 1) / len(chunks))
        finally:
            stop.set()
            thread.join()


def _as_index(index: Any, n: int) -> np.ndarray:
    index = np.atleast_1d(np.asarray(index))
    if index.dtype == bool:
        if index.shape != (n,):
            raise IndexError(f"boolean index of shape {index.shape} for {n} samples")
        return np.flatnonzero(index)
    if index.size == 0:
        return index.astype(np.int64)
    if not np.issubdtype(index.dtype, np.integer):
        raise IndexError(f"sample index must be integers, got dtype {index.dtype}")
    index = index.astype(np.int64).ravel()
    if index.min() < -n or index.max() >= n:
        raise IndexError(f"sample index out of range for {n} samples")
    return np.where(index < 0, index + n, index)


class ArraySamples(SampleSource):
    """Samples already in memory.

    Parameters
    ----------
    array : ndarray
        ``(N, 1, 30, 30, 30)`` or ``(N, 30, 30, 30)``; kept as given (float16 is fine),
        returned as float32.
    ids : array of int, optional
        Clump ids; default ``1..N``.
    """

    def __init__(self, array: np.ndarray, ids: np.ndarray | None = None) -> None:
        array = np.asarray(array)
        s = SAMPLE_SIZE
        if array.ndim == 4 and array.shape[1:] == (s, s, s):
            array = array[:, None]
        if array.ndim != 5 or array.shape[1:] != (1, s, s, s):
            raise ValueError(f"expected samples of shape (N, 1, {s}, {s}, {s}), got {array.shape}")
        self.array = array
        self.ids = (
            np.arange(1, len(array) + 1, dtype=np.int64)
            if ids is None
            else np.asarray(ids, dtype=np.int64)
        )
        if self.ids.shape != (len(array),):
            raise ValueError(f"{len(self.ids)} ids for {len(array)} samples")

    def get(self, index: Any) -> np.ndarray:
        return self.array[_as_index(index, len(self))].astype(np.float32)


class CandidateSamples(SampleSource):
    """Samples of the candidates in a label mask, built on demand.

    Every sample depends only on the cube, the mask, ``rms``, ``lag1``, ``seed`` and its
    clump id, never on which batch asked for it.

    Parameters
    ----------
    data : ndarray
        Cube ``(v, y, x)`` in K (NaN = blank); referenced, not copied (if float32).
    labels : ndarray of int
        Label mask of the same shape, 0 = no candidate.
    clump_ids : array of int, optional
        Candidates to use, in this order; default every id present in ``labels``
        (ascending). Ids absent from the mask raise ``ValueError``.
    rms : float, optional
        Noise rms in K; default :func:`glue_ssclump.core.cube.estimate_rms` of ``data``.
    lag1 : float, optional
        Lag-1 velocity correlation of the noise; default :func:`noise_lag1` of ``data``.
    seed : int
        Seed of the background noise.
    cache : {'auto', 'float16', None}
        ``'float16'`` keeps every generated sample (54 kB each) and returns the cached
        copy afterwards; samples are then always returned at float16 precision, whether
        fresh or cached. ``'auto'``: ``'float16'`` for at most 10,000 candidates, else
        no cache (25,000 float32 samples would be 2.7 GB).
    """

    default_prefetch = 1

    def __init__(
        self,
        data: np.ndarray,
        labels: np.ndarray,
        clump_ids: np.ndarray | None = None,
        rms: float | None = None,
        lag1: float | None = None,
        seed: int = 0,
        cache: str | None = "auto",
    ) -> None:
        data = np.asarray(data)
        labels = np.asarray(labels)
        if data.ndim != 3:
            raise ValueError(f"data must be a (v, y, x) cube, got shape {data.shape}")
        if labels.shape != data.shape:
            raise ValueError(f"labels shape {labels.shape} differs from data shape {data.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(f"labels must be an integer mask, got dtype {labels.dtype}")
        self.data = data if data.dtype == np.float32 else data.astype(np.float32)
        self.labels = labels
        if rms is None:
            from .cube import estimate_rms

            rms = estimate_rms(self.data)
        if not np.isfinite(rms) or rms <= 0:
            raise ValueError(f"rms must be a positive number of K, got {rms!r}")
        self.rms = float(rms)
        self.lag1 = noise_lag1(self.data, self.rms) if lag1 is None else float(lag1)
        if not -1.0 < self.lag1 < 1.0:
            raise ValueError(f"lag1 must be in (-1, 1), got {self.lag1}")
        self.seed = int(seed)

        if clump_ids is None:
            boxes = bounding_boxes(labels)
            ids = np.array([i + 1 for i, b in enumerate(boxes) if b is not None], dtype=np.int64)
        else:
            ids = np.atleast_1d(np.asarray(clump_ids)).astype(np.int64)
            if ids.size and ids.min() < 1:
                raise ValueError("clump ids must be >= 1 (0 is the background)")
            boxes = bounding_boxes(labels, int(ids.max()) if ids.size else 0)
            missing = [int(i) for i in ids if boxes[i - 1] is None]
            if missing:
                raise ValueError(
                    f"{len(missing)} clump id(s) not in the label mask, e.g. {missing[:5]}"
                )
        self.ids = ids
        self._boxes = np.zeros((ids.size, 6), dtype=np.int64)
        for k, cid in enumerate(ids):
            box = boxes[cid - 1]
            self._boxes[k] = [box[0].start, box[1].start, box[2].start,
                              box[0].stop, box[1].stop, box[2].stop]
        del boxes

        self._bank = _noise_bank(self.seed, self.lag1, NOISE_BANK_SHAPE)
        self._draws = _noise_draws(self.seed, ids, NOISE_BANK_SHAPE)

        if cache == "auto":
            cache = "float16" if ids.size <= AUTO_CACHE_MAX else None
        if cache not in ("float16", None):
            raise ValueError(f"cache must be 'auto', 'float16' or None, got {cache!r}")
        self.cache = cache
        self._cache: np.ndarray | None = None
        self._have = np.zeros(ids.size, dtype=bool)
        self._lock = threading.Lock()

    @classmethod
    def from_cube(cls, cube: Any, labels: np.ndarray, **kwargs: Any) -> CandidateSamples:
        """Build from a :class:`~glue_ssclump.core.cube.PPVCube` (uses ``cube.data``)."""
        return cls(cube.data, labels, **kwargs)

    @property
    def shapes(self) -> np.ndarray:
        """Bounding-box size ``(dv, dy, dx)`` of every candidate, ``(N, 3)``."""
        return self._boxes[:, 3:] - self._boxes[:, :3]

    def noise_for(self, position: int) -> np.ndarray:
        """The background (K) of sample ``position``: ``(30, 30, 30)`` float32."""
        return self.rms * _noise_block(self._bank, self._draws[position])

    def sample(self, position: int, normalise: bool = True) -> np.ndarray:
        """One sample, ``(30, 30, 30)`` float32, always freshly generated (no cache).

        With ``normalise=False`` the candidate's voxels keep their values in K.
        """
        b = self._boxes[position]
        box = (slice(b[0], b[3]), slice(b[1], b[4]), slice(b[2], b[5]))
        mask = self.labels[box] == self.ids[position]
        return make_sample(self.data[box], mask, self.noise_for(position), normalise=normalise)

    def _paper_channel(self, pos: int, dest: np.ndarray) -> None:
        """Candidate ``pos``'s voxels on its noise background into ``dest`` (in K)."""
        b = self._boxes[pos]
        box = (slice(b[0], b[3]), slice(b[1], b[4]), slice(b[2], b[5]))
        np.multiply(_noise_block(self._bank, self._draws[pos]), np.float32(self.rms), out=dest)
        _place(self.data[box], self.labels[box] == self.ids[pos], dest)

    def _generate(self, index: np.ndarray, out: np.ndarray) -> None:
        for k, pos in enumerate(index):
            self._paper_channel(pos, out[k, 0])
        _normalise(out)

    def get(self, index: Any) -> np.ndarray:
        index = _as_index(index, len(self))
        s = SAMPLE_SIZE
        out = np.empty((index.size, 1, s, s, s), dtype=np.float32)
        if self.cache is None:
            self._generate(index, out)
            return out
        with self._lock:
            if self._cache is None:
                # np.empty only reserves address space; pages are touched as samples arrive
                self._cache = np.empty((len(self), 1, s, s, s), dtype=np.float16)
        todo = ~self._have[index]
        if todo.any():
            fresh_pos = index[todo]
            fresh = np.empty((fresh_pos.size, 1, s, s, s), dtype=np.float32)
            self._generate(fresh_pos, fresh)
            self._cache[fresh_pos] = fresh
            self._have[fresh_pos] = True
        out[...] = self._cache[index]
        return out

    def clear_cache(self) -> None:
        """Drop the float16 cache (its memory is freed)."""
        with self._lock:
            self._cache = None
            self._have[:] = False
