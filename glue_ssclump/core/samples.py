"""Candidate samples: one 30 x 30 x 30 cube per clump candidate (METHOD.md section 1).

A sample is built from the cube ``data`` (``(v, y, x)``, K) and a mask:

1. cut the candidate's voxels (``data`` where ``mask == clump_id``, zero elsewhere;
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

Where the pieces live: :mod:`~glue_ssclump.core.sample_build` (one sample),
:mod:`~glue_ssclump.core.sample_noise` (the background),
:mod:`~glue_ssclump.core.sample_source` (:class:`SampleSource`, :class:`ArraySamples`);
this module has :class:`CandidateSamples` and re-exports the public names.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .sample_build import (
    SAMPLE_SIZE,
    _normalise,
    _place,
    bounding_boxes,
    make_sample,
    zoom_cubic,
)
from .sample_noise import (
    DEFAULT_LAG1,
    NOISE_BANK_SHAPE,
    _noise_bank,
    _noise_block,
    _noise_draws,
    ar1_noise,
    noise_lag1,
)
from .sample_source import ArraySamples, SampleSource, _as_index

__all__ = [
    "SAMPLE_SIZE",
    "NOISE_BANK_SHAPE",
    "DEFAULT_LAG1",
    "ArraySamples",
    "CandidateSamples",
    "SampleSource",
    "ar1_noise",
    "bounding_boxes",
    "zoom_cubic",
    "make_sample",
    "noise_lag1",
]

#: ``cache='auto'`` keeps a float16 cache up to this many candidates (54 kB each).
AUTO_CACHE_MAX = 10_000


class CandidateSamples(SampleSource):
    """Samples of the candidates in a mask, built on demand.

    Every sample depends only on the cube, the mask, ``rms``, ``lag1``, ``seed`` and its
    clump id, never on which batch asked for it.

    Parameters
    ----------
    data : ndarray
        Cube ``(v, y, x)`` in K (NaN = blank); referenced, not copied (if float32).
    mask : ndarray of int
        Mask of the same shape, 0 = no candidate.
    clump_ids : array of int, optional
        Candidates to use, in this order; default every id present in ``mask``
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
        mask: np.ndarray,
        clump_ids: np.ndarray | None = None,
        rms: float | None = None,
        lag1: float | None = None,
        seed: int = 0,
        cache: str | None = "auto",
    ) -> None:
        data = np.asarray(data)
        mask = np.asarray(mask)
        if data.ndim != 3:
            raise ValueError(f"data must be a (v, y, x) cube, got shape {data.shape}")
        if mask.shape != data.shape:
            raise ValueError(f"mask shape {mask.shape} differs from data shape {data.shape}")
        if not np.issubdtype(mask.dtype, np.integer):
            raise TypeError(f"mask must be integer (clump ids), got dtype {mask.dtype}")
        self.data = data if data.dtype == np.float32 else data.astype(np.float32)
        self.mask = mask
        if rms is None:
            from .rms import estimate_rms

            rms = estimate_rms(self.data)
        if not np.isfinite(rms) or rms <= 0:
            raise ValueError(f"rms must be a positive number of K, got {rms!r}")
        self.rms = float(rms)
        self.lag1 = noise_lag1(self.data, self.rms) if lag1 is None else float(lag1)
        if not -1.0 < self.lag1 < 1.0:
            raise ValueError(f"lag1 must be in (-1, 1), got {self.lag1}")
        self.seed = int(seed)

        if clump_ids is None:
            boxes = bounding_boxes(mask)
            ids = np.array([i + 1 for i, b in enumerate(boxes) if b is not None], dtype=np.int64)
        else:
            ids = np.atleast_1d(np.asarray(clump_ids)).astype(np.int64)
            if ids.size and ids.min() < 1:
                raise ValueError("clump ids must be >= 1 (0 is the background)")
            boxes = bounding_boxes(mask, int(ids.max()) if ids.size else 0)
            missing = [int(i) for i in ids if boxes[i - 1] is None]
            if missing:
                raise ValueError(
                    f"{len(missing)} clump id(s) not in the mask, e.g. {missing[:5]}"
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
    def from_cube(cls, cube: Any, mask: np.ndarray, **kwargs: Any) -> CandidateSamples:
        """Build from a :class:`~glue_ssclump.core.cube.PPVCube` (uses ``cube.data``)."""
        return cls(cube.data, mask, **kwargs)

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
        inside = self.mask[box] == self.ids[position]
        return make_sample(self.data[box], inside, self.noise_for(position), normalise=normalise)

    def _paper_channel(self, pos: int, dest: np.ndarray) -> None:
        """Candidate ``pos``'s voxels on its noise background into ``dest`` (in K)."""
        b = self._boxes[pos]
        box = (slice(b[0], b[3]), slice(b[1], b[4]), slice(b[2], b[5]))
        np.multiply(_noise_block(self._bank, self._draws[pos]), np.float32(self.rms), out=dest)
        _place(self.data[box], self.mask[box] == self.ids[pos], dest)

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
