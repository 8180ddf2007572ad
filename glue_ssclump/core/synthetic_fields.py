"""Random backgrounds of a synthetic cube: correlated noise and diffuse cloud emission.

Both are made block by block of channels (:data:`CHUNK_VOXELS` voxels at a time), so
a large cube never exists twice in memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .progress import Progress

FWHM_TO_SIGMA = 1.0 / math.sqrt(8.0 * math.log(2.0))
#: Voxels per block of channels (noise, diffuse field): bounds the working memory.
CHUNK_VOXELS = 4_000_000


def _chunk(shape: Sequence[int]) -> int:
    return max(1, CHUNK_VOXELS // (int(shape[1]) * int(shape[2])))


def _smoothing_gain(sigma: float) -> float:
    """std of white unit noise after gaussian_filter1d(sigma) (exact for the kernel)."""
    if sigma <= 0:
        return 1.0
    n = 2 * int(4.0 * sigma + 0.5) + 1
    delta = np.zeros(n)
    delta[n // 2] = 1.0
    k = ndimage.gaussian_filter1d(delta, sigma, mode="constant")
    return float(np.sqrt(np.sum(k * k)))


def add_noise(out: np.ndarray, rng: np.random.Generator, progress: Progress, *,
              rms: float, lag1: float, beam_fwhm: float) -> None:
    """Add beam- and velocity-correlated Gaussian noise of rms ``rms`` to ``out``.

    Parameters
    ----------
    out : ndarray of float32
        The ``(nv, ny, nx)`` cube, changed in place.
    rng : numpy.random.Generator
        The noise's random stream.
    progress : Progress
        Progress / cancellation.
    rms : float
        Noise rms, K.
    lag1 : float
        Lag-1 correlation along velocity (an AR(1) process), in (-1, 1).
    beam_fwhm : float
        FWHM (pixels) of the Gaussian that correlates the noise on the sky.
    """
    nv = out.shape[0]
    sig = beam_fwhm * FWHM_TO_SIGMA
    scale = rms / _smoothing_gain(sig) ** 2
    r = float(lag1)
    c = math.sqrt(1.0 - r * r)
    prev: np.ndarray | None = None
    step = _chunk(out.shape)
    for v0 in range(0, nv, step):
        block = rng.standard_normal((min(step, nv - v0),) + out.shape[1:], dtype=np.float32)
        if sig > 0:
            # 'wrap' keeps the noise statistically identical at the edges
            ndimage.gaussian_filter(block, (0, sig, sig), output=block, mode="wrap")
        block *= np.float32(scale)
        for k in range(len(block)):
            if prev is not None:
                block[k] *= np.float32(c)
                block[k] += np.float32(r) * prev
            prev = block[k]
        out[v0:v0 + len(block)] += block
        progress.update((v0 + len(block)) / nv)
        prev = prev.copy() if prev is not None else None


def _gauss_matrix(n: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian weights ``(n, m)`` of m nodes (spacing sigma, random phase) for n pixels.

    With node spacing equal to sigma, a white-noise sum over the nodes is stationary to
    a few parts in 1e5 (the ripple goes as exp(-pi^2 sigma^2 / spacing^2)).
    """
    pad = 4.0 * sigma
    nodes = np.arange(-pad + rng.uniform(0, sigma), n + pad, sigma)
    d = np.arange(n)[:, None] - nodes[None, :]
    return np.exp(-0.5 * (d / sigma) ** 2).astype(np.float32)


class _GaussianField:
    """A unit-variance Gaussian random field with a Gaussian correlation (separable).

    White noise on a coarse grid, convolved with a Gaussian of ``(sigma_v, sigma_p,
    sigma_p)``: one matrix product per sky axis up front, then one per block of
    channels, so large cubes cost little and never exist twice in memory.
    """

    def __init__(self, shape: Sequence[int], scale: tuple[float, float],
                 rng: np.random.Generator) -> None:
        nv, ny, nx = shape
        sv, sp = scale
        wv, wy, wx = _gauss_matrix(nv, sv, rng), _gauss_matrix(ny, sp, rng), \
            _gauss_matrix(nx, sp, rng)
        coarse = rng.standard_normal((wv.shape[1], wy.shape[1], wx.shape[1]),
                                     dtype=np.float32)
        self.mid = np.einsum("ijk,yj,xk->iyx", coarse, wy, wx, optimize=True)
        var = np.mean(np.sum(wv.astype(np.float64) ** 2, 1)) * np.mean(
            np.sum(wy.astype(np.float64) ** 2, 1)) * np.mean(np.sum(wx.astype(np.float64) ** 2, 1))
        self.wv = wv / np.float32(math.sqrt(var))

    def block(self, v0: int, v1: int) -> np.ndarray:
        return np.tensordot(self.wv[v0:v1], self.mid, axes=(1, 0))

def fill_diffuse(out: np.ndarray, rng: np.random.Generator, progress: Progress, *,
                 rms: float, diffuse_peak: float, diffuse_scale: tuple[float, float],
                 diffuse_detail_scale: tuple[float, float], diffuse_detail_weight: float,
                 diffuse_cover: float) -> None:
    """Set ``out`` to the diffuse cloud, ``peak * max(g - t, 0) / max(...)``.

    ``g = sqrt(1 - w) * g_large + sqrt(w) * g_detail`` (``w = diffuse_detail_weight``)
    is a unit-variance Gaussian random field, large cloud envelopes with internal
    structure; ``t`` makes about ``diffuse_cover`` of the cube non-zero.

    Parameters
    ----------
    out : ndarray of float32
        The ``(nv, ny, nx)`` cube, overwritten.
    rng : numpy.random.Generator
        The field's random stream.
    progress : Progress
        Progress / cancellation.
    rms : float
        Noise rms, K (the unit of ``diffuse_peak``).
    diffuse_peak : float
        Peak of the cloud, rms (0 = none: ``out`` is zeroed).
    diffuse_scale, diffuse_detail_scale : (float, float)
        Correlation lengths (Gaussian sigma) of the envelopes and of the structure
        inside them: (channels, pixels).
    diffuse_detail_weight : float
        Share (0-1) of the structure in the field's variance.
    diffuse_cover : float
        Fraction of the cube where the cloud is non-zero (about).
    """
    if diffuse_peak <= 0:
        out[...] = 0.0
        return
    from scipy.stats import norm as gauss

    nv = out.shape[0]
    w = float(np.clip(diffuse_detail_weight, 0.0, 1.0))
    fields = [(np.float32(math.sqrt(1.0 - w)), _GaussianField(out.shape, diffuse_scale, rng))]
    if w > 0:
        fields.append((np.float32(math.sqrt(w)),
                       _GaussianField(out.shape, diffuse_detail_scale, rng)))
    threshold = np.float32(gauss.isf(diffuse_cover))
    step = _chunk(out.shape)
    peak = 0.0
    for v0 in range(0, nv, step):
        v1 = min(nv, v0 + step)
        g = out[v0:v1]
        g[...] = -threshold
        for weight, field in fields:
            g += weight * field.block(v0, v1)
        np.maximum(g, 0, out=g)
        peak = max(peak, float(g.max()))
        progress.update(v1 / nv)
    del fields
    if peak > 0:
        for v0 in range(0, nv, step):
            out[v0:v0 + step] *= np.float32(diffuse_peak * rms / peak)
