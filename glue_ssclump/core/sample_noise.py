"""The background noise of candidate samples, matched to the cube's own noise.

Every voxel of a sample outside its candidate's mask is noise of the cube's rms with
the cube's lag-1 correlation along velocity (:func:`noise_lag1`).  A unit-variance
AR(1) noise bank (:func:`ar1_noise`, :data:`NOISE_BANK_SHAPE`) is drawn once per
``(seed, lag1)``; each candidate takes its own 30^3 block of it, with offset, axis
flips, a y/x transpose and sign derived from a hash of ``(seed, clump_id)``, so a
sample's background depends only on its clump id, never on batch order or size.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.signal import lfilter

from .sample_build import SAMPLE_SIZE

__all__ = ["DEFAULT_LAG1", "NOISE_BANK_SHAPE", "ar1_noise", "noise_lag1"]

#: Shape (v, y, x) of the unit-variance AR(1) noise bank samples draw their background from.
NOISE_BANK_SHAPE = (64, 96, 96)
#: Lag-1 velocity correlation used when the cube has too few emission-free voxels.
DEFAULT_LAG1 = 0.4

_MAD_TO_STD = 1.482602218505602
_LAG1_SLAB_VOXELS = 4_000_000
_LAG1_MAX_PAIRS = 4_000_000


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
