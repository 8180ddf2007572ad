"""Four-channel candidate samples for ``arch='context'`` (docs/verifier.md).

The paper's sample (:mod:`~glue_ssclump.core.samples`) shows the network only the
candidate's own voxels, min-max normalised, in noise: a bead of a bright filament, a
fragment of a cloud and a compact clump look alike, and the normalisation removes the
signal-to-noise ratio.  :class:`ContextSamples` adds what an astronomer looks at:

0. the paper's sample, unchanged (candidate voxels in background noise, min-max);
1. **context**: the cube in a 30^3 window centred on the candidate's peak voxel, at
   the cube's own scale (no shrinking), as ``asinh(T / (2 rms)) / 2``: the SNR is kept
   (compressed so bright peaks do not dominate) and the surroundings are visible -
   a tube continuing past the candidate, a cloud under it, a brighter neighbour;
2. **mask**: 1 on the candidate's voxels, 0.5 on other candidates' voxels, 0 elsewhere,
   in the same window: a piece of a split structure touches its neighbours;
3. **valid**: 1 where the cube has data, 0 on NaN blanks and beyond the cube's edge:
   truncated candidates border the blanks.

Every sample depends only on the cube, the mask, ``rms``, ``lag1``, ``seed`` and the
clump id, as for :class:`~glue_ssclump.core.samples.CandidateSamples`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from .samples import SAMPLE_SIZE, CandidateSamples, _as_index, _normalise

__all__ = ["CONTEXT_CHANNELS", "ContextSamples", "context_window"]

#: Channels of a context sample.
CONTEXT_CHANNELS = 4
#: Cube values are shown as asinh(T / (SOFTENING * rms)) / 2.
SOFTENING = 2.0
#: Mask value of voxels that belong to another candidate.
OTHER_CANDIDATE = 0.5


def context_window(data: np.ndarray, mask: np.ndarray, peak: tuple[int, int, int],
                   clump_id: int, rms: float, out: np.ndarray) -> None:
    """Fill ``out[1:4]`` (context, mask, valid; each 30^3) around ``peak`` (z, y, x).

    The window is ``peak - 15 .. peak + 14`` on each axis; what lies beyond the cube
    is left at 0 (context 0, mask 0, valid 0).
    """
    s = SAMPLE_SIZE
    half = s // 2
    src, dst = [], []
    for c, n in zip(peak, data.shape, strict=True):
        lo, hi = int(c) - half, int(c) - half + s
        a, b = max(lo, 0), min(hi, n)
        src.append(slice(a, b))
        dst.append(slice(a - lo, b - lo))
    out[1:4] = 0.0
    if any(sl.start >= sl.stop for sl in src):
        return
    crop = data[tuple(src)]
    lab = mask[tuple(src)]
    finite = np.isfinite(crop)
    ctx = np.where(finite, crop, 0.0) / (SOFTENING * rms)
    out[1][tuple(dst)] = np.arcsinh(ctx) / 2.0
    mask = np.where(lab == clump_id, 1.0, np.where(lab > 0, OTHER_CANDIDATE, 0.0))
    out[2][tuple(dst)] = mask
    out[3][tuple(dst)] = finite


class ContextSamples(CandidateSamples):
    """:class:`CandidateSamples` with the three context channels (module docstring).

    ``get`` returns ``(n, 4, 30, 30, 30)`` float32; the cache (``'float16'``) holds
    four channels (216 kB per candidate), so ``cache='auto'`` keeps it up to 2,500
    candidates.  Other parameters as :class:`CandidateSamples`.
    """

    def __init__(self, data: np.ndarray, mask: np.ndarray, *args: Any,
                 cache: str | None = "auto", **kwargs: Any) -> None:
        if cache == "auto":
            n = len(np.unique(mask)) - 1 if kwargs.get("clump_ids") is None else len(
                np.atleast_1d(kwargs["clump_ids"]))
            cache = "float16" if n <= 2_500 else None
        super().__init__(data, mask, *args, cache=cache, **kwargs)
        work = np.where(np.isfinite(self.data), self.data, -np.inf)
        if self.ids.size:
            pos = ndimage.maximum_position(work, self.mask, self.ids)
            self.peaks = np.asarray(pos, dtype=np.int64).reshape(-1, 3)
        else:
            self.peaks = np.zeros((0, 3), np.int64)

    def _generate(self, index: np.ndarray, out: np.ndarray) -> None:
        for k, pos in enumerate(index):
            self._paper_channel(pos, out[k, 0])
            context_window(self.data, self.mask, tuple(self.peaks[pos]),
                           int(self.ids[pos]), self.rms, out[k])
        _normalise(out[:, :1])

    def get(self, index: Any) -> np.ndarray:
        index = _as_index(index, len(self))
        s = SAMPLE_SIZE
        shape = (CONTEXT_CHANNELS, s, s, s)
        out = np.empty((index.size,) + shape, dtype=np.float32)
        if self.cache is None:
            self._generate(index, out)
            return out
        with self._lock:
            if self._cache is None:
                self._cache = np.empty((len(self),) + shape, dtype=np.float16)
        todo = ~self._have[index]
        if todo.any():
            fresh_pos = index[todo]
            fresh = np.empty((fresh_pos.size,) + shape, dtype=np.float32)
            self._generate(fresh_pos, fresh)
            self._cache[fresh_pos] = fresh
            self._have[fresh_pos] = True
        out[...] = self._cache[index]
        return out
