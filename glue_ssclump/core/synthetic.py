"""Synthetic PPV cubes with injected clumps and their truth tables.

:func:`make_synthetic_cube` builds a ``(v, y, x)`` float32 cube in K with a Galactic
WCS (GLON-CAR / GLAT-CAR, VRAD in km/s, 30" pixels, 0.166 km/s channels) that holds

* noise of the requested rms, correlated spatially like a beam (Gaussian, FWHM
  ``beam_fwhm`` pixels) and along velocity (AR(1), lag-1 correlation ``lag1``);
* diffuse cloud emission: a smooth Gaussian random field (correlation lengths of
  ``diffuse_scale`` pixels / channels), clipped to its brighter part and scaled to a
  peak of ``diffuse_peak`` rms;
* clumps: rotated 3D Gaussians (major / minor axis, position angle in l-b, velocity
  dispersion, and a velocity gradient along the major axis), peak signal-to-noise
  log-uniform in ``snr_range``, a fraction ``overlap_fraction`` of them placed next
  to an earlier clump so that they overlap.

The truth table lists every injected clump; :func:`score_candidates` calls a detector's
candidate *true* when a truth clump of peak SNR >= ``snr_min`` lies within ``dpix``
pixels (on the sky) and ``dchan`` channels of its peak voxel.

Presets (:data:`PRESETS`; explicit arguments override them):

``'benchmark'``
    The default: 0.6 clumps per 1,000 voxels with peak SNR log-uniform in 1.5-30 (40%
    of them below SNR 5, so not counted as real), a quarter of them overlapping a
    neighbour, in a diffuse cloud that covers half the cube and peaks at 5.5 rms
    (envelopes of sigma 12 px / 6 channels with structure of 4 px / 2.5 channels).
    With the paper's detector settings about 60 % of ClumpFind's candidates, 36 % of
    FellWalker's and 23 % of the dendrogram leaves are false (``snr_min=5``, ``dpix=2``,
    ``dchan=2``, detection at the injected rms; with :func:`~glue_ssclump.core.cube.
    estimate_rms`, which reads the cube's rms about 7 % low, 66 %, 39 % and 29 %);
    per detector and seed in :data:`PRESET_FALSE_FRACTIONS`.
``'clean'``
    0.3 bright (SNR 8-30), non-overlapping clumps per 1,000 voxels on pure noise:
    1-2 % of ClumpFind's candidates are false, under 1 % of the others'.

All steps work on blocks of channels, so a 200 x 400 x 400 cube (122 MiB, about
19,000 clumps) is built with a peak of about twice its size
(:func:`make_large_synthetic_cube`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from scipy import ndimage
from scipy.spatial import cKDTree

from .progress import Progress, ensure_progress

__all__ = [
    "PRESETS",
    "PRESET_FALSE_FRACTIONS",
    "SyntheticSettings",
    "candidate_peaks",
    "make_large_synthetic_cube",
    "make_synthetic_cube",
    "match_candidates",
    "score_candidates",
    "synthetic_header",
    "write_synthetic",
]

#: 13CO(1-0) rest frequency, Hz.
RESTFRQ_13CO = 110.2013543e9
#: Pixel size, arcsec, and channel width, km/s (MWISP-like).
PIXEL_ARCSEC = 30.0
CHANNEL_KMS = 0.166
FWHM_TO_SIGMA = 1.0 / math.sqrt(8.0 * math.log(2.0))
#: Voxels per block of channels (noise, diffuse field): bounds the working memory.
CHUNK_VOXELS = 4_000_000


@dataclass(frozen=True)
class SyntheticSettings:
    """Everything that shapes a synthetic cube (a preset is one of these).

    Attributes
    ----------
    shape : tuple of int
        ``(nv, ny, nx)``.
    rms : float
        Noise rms, K.
    lag1 : float
        Lag-1 correlation of the noise along velocity.
    beam_fwhm : float
        FWHM (pixels) of the Gaussian that correlates the noise spatially.
    clump_density : float
        Clumps per 1,000 voxels when ``n_clumps`` is not given.
    snr_range : (float, float)
        Peak SNR (peak / rms) range, drawn log-uniformly.
    sigma_major_range : (float, float)
        Major-axis dispersion, pixels (uniform).
    axis_ratio_range : (float, float)
        Minor / major axis ratio (uniform).
    sigma_v_range : (float, float)
        Velocity dispersion, channels (uniform).
    grad_max : float
        Largest velocity gradient along the major axis, channels per pixel.
    overlap_fraction : float
        Fraction of clumps placed 1.5-3 sigma from an earlier clump (they blend).
    diffuse_peak : float
        Peak of the diffuse cloud emission, in rms (0 = none).
    diffuse_scale : (float, float)
        Correlation lengths (Gaussian sigma) of the cloud envelopes: (channels, pixels).
    diffuse_detail_scale : (float, float)
        Correlation lengths of the structure inside the clouds: (channels, pixels).
    diffuse_detail_weight : float
        Share (0-1) of the structure in the field's variance.
    diffuse_cover : float
        Fraction of the cube where the diffuse emission is non-zero (about).
    """

    shape: tuple[int, int, int] = (64, 128, 128)
    rms: float = 0.15
    lag1: float = 0.4
    beam_fwhm: float = 2.0
    clump_density: float = 0.6
    snr_range: tuple[float, float] = (1.5, 30.0)
    sigma_major_range: tuple[float, float] = (1.2, 3.5)
    axis_ratio_range: tuple[float, float] = (0.5, 1.0)
    sigma_v_range: tuple[float, float] = (1.0, 3.0)
    grad_max: float = 0.4
    overlap_fraction: float = 0.25
    diffuse_peak: float = 5.5
    diffuse_scale: tuple[float, float] = (6.0, 12.0)
    diffuse_detail_scale: tuple[float, float] = (2.5, 4.0)
    diffuse_detail_weight: float = 0.5
    diffuse_cover: float = 0.5


PRESETS: dict[str, SyntheticSettings] = {
    "benchmark": SyntheticSettings(),
    "clean": SyntheticSettings(
        clump_density=0.3, snr_range=(8.0, 30.0), overlap_fraction=0.0, diffuse_peak=0.0
    ),
}

#: False-candidate fractions of detectors at the paper's settings (registry defaults) on
#: the preset's default shape (64, 128, 128), seeds 0, 1, 2, scored by
#: :func:`score_candidates` with its defaults: ``(mean, min, max)`` when detecting at the
#: injected rms ('true_rms') and at :func:`~glue_ssclump.core.cube.estimate_rms`
#: ('estimated_rms'). Reproduce with ``benchmarks/bench_samples.py --false-fractions``.
PRESET_FALSE_FRACTIONS: dict[str, dict[str, dict[str, tuple[float, float, float]]]] = {
    "benchmark": {
        "clumpfind": {"true_rms": (0.600, 0.591, 0.609),
                      "estimated_rms": (0.665, 0.657, 0.671)},
        "fellwalker": {"true_rms": (0.359, 0.342, 0.377),
                       "estimated_rms": (0.387, 0.371, 0.413)},
        "dendrogram": {"true_rms": (0.233, 0.211, 0.245),
                       "estimated_rms": (0.286, 0.265, 0.307)},
    },
    "clean": {
        "clumpfind": {"true_rms": (0.014, 0.011, 0.017)},
        "fellwalker": {"true_rms": (0.003, 0.0, 0.009)},
        "dendrogram": {"true_rms": (0.003, 0.0, 0.008)},
    },
}


def _settings(preset: str | SyntheticSettings | None, **overrides: Any) -> SyntheticSettings:
    if isinstance(preset, SyntheticSettings):
        base = preset
    else:
        name = "benchmark" if preset is None else str(preset).lower()
        if name not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        base = PRESETS[name]
    given = {k: v for k, v in overrides.items() if v is not None}
    if "shape" in given:
        given["shape"] = tuple(int(n) for n in given["shape"])
    return replace(base, **given)


# --------------------------------------------------------------------------------------
# Header
# --------------------------------------------------------------------------------------
def synthetic_header(
    shape: Sequence[int],
    *,
    lon0: float = 30.0,
    lat0: float = 0.0,
    vel0: float = 10.0,
    pixel_arcsec: float = PIXEL_ARCSEC,
    channel_kms: float = CHANNEL_KMS,
    beam_fwhm: float = 2.0,
) -> fits.Header:
    """A 3D FITS header: GLON-CAR / GLAT-CAR, VRAD (km/s, LSRK), BUNIT K.

    The cube centre is at ``(lon0, lat0, vel0)``; ``shape`` is numpy ``(nv, ny, nx)``.
    """
    nv, ny, nx = (int(n) for n in shape)
    pix = pixel_arcsec / 3600.0
    h = fits.Header()
    h["NAXIS"] = 3
    h["NAXIS1"], h["NAXIS2"], h["NAXIS3"] = nx, ny, nv
    h["CTYPE1"], h["CRVAL1"], h["CDELT1"], h["CRPIX1"], h["CUNIT1"] = (
        "GLON-CAR", float(lon0), -pix, (nx + 1) / 2.0, "deg")
    h["CTYPE2"], h["CRVAL2"], h["CDELT2"], h["CRPIX2"], h["CUNIT2"] = (
        "GLAT-CAR", float(lat0), pix, (ny + 1) / 2.0, "deg")
    h["CTYPE3"], h["CRVAL3"], h["CDELT3"], h["CRPIX3"], h["CUNIT3"] = (
        "VRAD", float(vel0), float(channel_kms), (nv + 1) / 2.0, "km/s")
    h["SPECSYS"] = "LSRK"
    h["RESTFRQ"] = RESTFRQ_13CO
    h["BUNIT"] = "K"
    h["BMAJ"] = h["BMIN"] = beam_fwhm * pix
    h["BPA"] = 0.0
    h["OBJECT"] = "SYNTHETIC"
    return h


# --------------------------------------------------------------------------------------
# Noise and diffuse emission (chunked over channels)
# --------------------------------------------------------------------------------------
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


def _add_noise(out: np.ndarray, s: SyntheticSettings, rng: np.random.Generator,
               progress: Progress) -> None:
    """Add beam- and velocity-correlated Gaussian noise of rms ``s.rms`` to ``out``."""
    nv = out.shape[0]
    sig = s.beam_fwhm * FWHM_TO_SIGMA
    scale = s.rms / _smoothing_gain(sig) ** 2
    r = float(s.lag1)
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


def _fill_diffuse(out: np.ndarray, s: SyntheticSettings, rng: np.random.Generator,
                  progress: Progress) -> None:
    """Set ``out`` to the diffuse cloud, ``peak * max(g - t, 0) / max(...)``.

    ``g = sqrt(1 - w) * g_large + sqrt(w) * g_detail`` (``w = diffuse_detail_weight``)
    is a unit-variance Gaussian random field, large cloud envelopes with internal
    structure; ``t`` makes about ``diffuse_cover`` of the cube non-zero.
    """
    if s.diffuse_peak <= 0:
        out[...] = 0.0
        return
    from scipy.stats import norm as gauss

    nv = out.shape[0]
    w = float(np.clip(s.diffuse_detail_weight, 0.0, 1.0))
    fields = [(np.float32(math.sqrt(1.0 - w)), _GaussianField(out.shape, s.diffuse_scale, rng))]
    if w > 0:
        fields.append((np.float32(math.sqrt(w)),
                       _GaussianField(out.shape, s.diffuse_detail_scale, rng)))
    threshold = np.float32(gauss.isf(s.diffuse_cover))
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
            out[v0:v0 + step] *= np.float32(s.diffuse_peak * s.rms / peak)


# --------------------------------------------------------------------------------------
# Clumps
# --------------------------------------------------------------------------------------
def _draw_clumps(n: int, s: SyntheticSettings, rng: np.random.Generator) -> dict[str, np.ndarray]:
    nv, ny, nx = s.shape
    lo, hi = np.log(s.snr_range[0]), np.log(s.snr_range[1])
    snr = np.exp(rng.uniform(lo, hi, n))
    smaj = rng.uniform(*s.sigma_major_range, n)
    smin = smaj * rng.uniform(*s.axis_ratio_range, n)
    pa = rng.uniform(0.0, 180.0, n)
    sv = rng.uniform(*s.sigma_v_range, n)
    grad = rng.uniform(-s.grad_max, s.grad_max, n)
    margin = np.array([3.0, 3.0, 3.0])
    upper = np.array([nv, ny, nx], float) - 1 - margin
    pos = rng.uniform(margin, np.maximum(upper, margin + 1e-6), (n, 3))
    near = rng.random(n) < s.overlap_fraction
    for i in range(1, n):
        if near[i]:
            j = int(rng.integers(0, i))
            ang = rng.uniform(0, 2 * np.pi)
            dist = rng.uniform(1.5, 3.0) * (smaj[i] + smaj[j]) / 2
            dz = rng.uniform(-2.0, 2.0) * (sv[i] + sv[j]) / 2
            pos[i] = pos[j] + [dz, dist * np.sin(ang), dist * np.cos(ang)]
    pos = np.clip(pos, margin, np.maximum(upper, margin))
    return {"z": pos[:, 0], "y": pos[:, 1], "x": pos[:, 2], "snr": snr, "smaj": smaj,
            "smin": smin, "pa": pa, "sv": sv, "grad": grad}


def _add_clump(out: np.ndarray, peak: float, z0: float, y0: float, x0: float,
               smaj: float, smin: float, pa_deg: float, sv: float, grad: float) -> None:
    """Add ``peak * exp(-(u^2/a^2 + w^2/b^2 + (z - z0 - grad*u)^2/sv^2)/2)`` in a box."""
    nv, ny, nx = out.shape
    rs = 4.0 * smaj
    rv = 4.0 * sv + abs(grad) * rs
    box = []
    for c, r, n in ((z0, rv, nv), (y0, rs, ny), (x0, rs, nx)):
        box.append((max(0, int(np.floor(c - r))), min(n, int(np.ceil(c + r)) + 1)))
    if any(a >= b for a, b in box):
        return
    z = np.arange(*box[0], dtype=np.float64)[:, None, None] - z0
    y = np.arange(*box[1], dtype=np.float64)[None, :, None] - y0
    x = np.arange(*box[2], dtype=np.float64)[None, None, :] - x0
    t = np.deg2rad(pa_deg)
    uu = x * np.cos(t) + y * np.sin(t)
    ww = -x * np.sin(t) + y * np.cos(t)
    arg = (uu / smaj) ** 2 + (ww / smin) ** 2 + ((z - grad * uu) / sv) ** 2
    out[box[0][0]:box[0][1], box[1][0]:box[1][1], box[2][0]:box[2][1]] += (
        peak * np.exp(-0.5 * arg)).astype(np.float32)


def _truth_table(clumps: dict[str, np.ndarray], s: SyntheticSettings,
                 header: fits.Header) -> Table:
    n = len(clumps["x"])
    wcs = WCS(header)
    world = wcs.pixel_to_world_values(clumps["x"], clumps["y"], clumps["z"])
    vel = (np.asarray(world[2]) * u.Unit(wcs.wcs.cunit[2])).to_value(u.km / u.s)
    dv = abs(header["CDELT3"])
    t = Table()
    t["clump_id"] = np.arange(1, n + 1, dtype=np.int64)
    t["x"] = clumps["x"] * u.pix
    t["y"] = clumps["y"] * u.pix
    t["z"] = clumps["z"] * u.pix
    t["lon"] = np.asarray(world[0]) * u.deg
    t["lat"] = np.asarray(world[1]) * u.deg
    t["vel"] = vel * u.km / u.s
    t["peak"] = clumps["snr"] * s.rms * u.K
    t["snr_peak"] = clumps["snr"]
    t["sigma_major"] = clumps["smaj"] * u.pix
    t["sigma_minor"] = clumps["smin"] * u.pix
    t["pa"] = clumps["pa"] * u.deg
    t["sigma_v"] = clumps["sv"] * dv * u.km / u.s
    t["grad"] = clumps["grad"] * dv * u.km / u.s / u.pix
    t["x"].description = "peak position, 0-based pixel (numpy data[z, y, x])"
    t["pa"].description = "major axis angle from the +x pixel axis towards +y"
    t["sigma_v"].description = "velocity dispersion (Gaussian sigma)"
    t["grad"].description = "velocity gradient along the major axis"
    t["snr_peak"].description = "injected peak / noise rms"
    t.meta["settings"] = {k: (list(v) if isinstance(v, tuple) else v)
                          for k, v in asdict(s).items()}
    return t


# --------------------------------------------------------------------------------------
# Public
# --------------------------------------------------------------------------------------
def make_synthetic_cube(
    shape: Sequence[int] | None = None,
    n_clumps: int | None = None,
    seed: int = 0,
    rms: float | None = None,
    *,
    preset: str | SyntheticSettings | None = "benchmark",
    progress: Progress | None = None,
    **settings: Any,
) -> tuple[np.ndarray, fits.Header, Table]:
    """A synthetic PPV cube with injected clumps.

    Parameters
    ----------
    shape : (nv, ny, nx), optional
        Cube shape; default the preset's ``(64, 128, 128)``.
    n_clumps : int, optional
        Clumps to inject; default ``clump_density`` per 1,000 voxels.
    seed : int
        Random seed: the same seed and settings give the same cube.
    rms : float, optional
        Noise rms in K (default 0.15).
    preset : str or SyntheticSettings
        ``'benchmark'`` (default) or ``'clean'``, see :data:`PRESETS`.
    progress : Progress, optional
        Progress / cancellation.
    **settings
        Any other :class:`SyntheticSettings` field (e.g. ``lag1=0.2``,
        ``diffuse_peak=0``).

    Returns
    -------
    data : ndarray
        float32 ``(nv, ny, nx)``, K.
    header : astropy.io.fits.Header
        Galactic WCS (GLON-CAR, GLAT-CAR, VRAD km/s), BUNIT K, the settings as HISTORY.
    truth : astropy.table.Table
        One row per injected clump: clump_id, x, y, z (pixel of the peak), lon, lat,
        vel, peak [K], snr_peak, sigma_major, sigma_minor [pix], pa [deg],
        sigma_v [km/s], grad [km/s/pix].
    """
    s = _settings(preset, shape=shape, rms=rms, **settings)
    if len(s.shape) != 3 or min(s.shape) < 8:
        raise ValueError(f"shape must be (nv, ny, nx) with every side >= 8, got {s.shape}")
    if not s.rms > 0:
        raise ValueError(f"rms must be positive, got {s.rms}")
    if not -1.0 < s.lag1 < 1.0:
        raise ValueError(f"lag1 must be in (-1, 1), got {s.lag1}")
    progress = ensure_progress(progress)
    if n_clumps is None:
        n_clumps = int(round(s.clump_density * np.prod(s.shape) / 1000.0))
    r_clumps, r_diffuse, r_noise = (np.random.default_rng(q)
                                    for q in np.random.SeedSequence(int(seed)).spawn(3))

    header = synthetic_header(s.shape, beam_fwhm=s.beam_fwhm)
    data = np.zeros(s.shape, dtype=np.float32)
    _fill_diffuse(data, s, r_diffuse, progress.span(0.0, 0.3, "synthetic: diffuse emission"))
    _add_noise(data, s, r_noise, progress.span(0.3, 0.8, "synthetic: noise"))
    clumps = _draw_clumps(int(n_clumps), s, r_clumps)
    sub = progress.span(0.8, 1.0, "synthetic: clumps")
    for i in range(int(n_clumps)):
        _add_clump(data, clumps["snr"][i] * s.rms, clumps["z"][i], clumps["y"][i],
                   clumps["x"][i], clumps["smaj"][i], clumps["smin"][i], clumps["pa"][i],
                   clumps["sv"][i], clumps["grad"][i])
        if i % 256 == 0:
            sub.update(i / max(n_clumps, 1))
    progress.update(1.0)
    truth = _truth_table(clumps, s, header)
    header["HISTORY"] = f"glue_ssclump synthetic cube, seed {int(seed)}, {int(n_clumps)} clumps"
    header["SYNSEED"] = (int(seed), "synthetic cube seed")
    header["SYNRMS"] = (s.rms, "[K] injected noise rms")
    header["SYNLAG1"] = (s.lag1, "injected noise lag-1 velocity correlation")
    if isinstance(preset, str) or preset is None:
        header["SYNPRSET"] = ("benchmark" if preset is None else preset, "synthetic preset")
    return data, header, truth


def make_large_synthetic_cube(
    shape: Sequence[int] = (200, 400, 400),
    seed: int = 0,
    *,
    preset: str | SyntheticSettings | None = "benchmark",
    progress: Progress | None = None,
    **settings: Any,
) -> tuple[np.ndarray, fits.Header, Table]:
    """A benchmark-size cube (default 200 x 400 x 400, 128 MB float32).

    The same as :func:`make_synthetic_cube` (which works on blocks of channels); peak
    memory is about twice the cube: the cube, the diffuse field's coarse grids and a
    few blocks of ``CHUNK_VOXELS`` voxels (measured: +248 MB resident for the default
    shape, 19,200 clumps).
    """
    return make_synthetic_cube(shape, seed=seed, preset=preset, progress=progress, **settings)


def write_synthetic(
    out: str | os.PathLike,
    shape: Sequence[int] | None = None,
    n_clumps: int | None = None,
    seed: int = 0,
    rms: float | None = None,
    *,
    preset: str | SyntheticSettings | None = "benchmark",
    overwrite: bool = True,
    **settings: Any,
) -> tuple[Path, Path]:
    """Write a synthetic cube (FITS) and its truth table (ECSV).

    Parameters
    ----------
    out : path
        An existing directory (files ``synthetic.fits`` and ``synthetic_truth.ecsv`` in
        it) or a prefix ``P`` (files ``P.fits`` and ``P_truth.ecsv``; a trailing
        ``.fits`` is dropped).
    shape, n_clumps, seed, rms, preset, **settings
        As :func:`make_synthetic_cube`.
    overwrite : bool
        Replace existing files.

    Returns
    -------
    (Path, Path)
        The cube and the truth table.
    """
    out = Path(out)
    if out.is_dir():
        prefix = out / "synthetic"
    else:
        prefix = out.with_suffix("") if out.suffix.lower() in (".fits", ".fit") else out
        prefix.parent.mkdir(parents=True, exist_ok=True)
    data, header, truth = make_synthetic_cube(shape, n_clumps, seed, rms, preset=preset,
                                              **settings)
    cube_path = prefix.parent / (prefix.name + ".fits")
    truth_path = prefix.parent / (prefix.name + "_truth.ecsv")
    fits.PrimaryHDU(data, header).writeto(cube_path, overwrite=overwrite)
    truth.write(truth_path, format="ascii.ecsv", overwrite=overwrite)
    return cube_path, truth_path


# --------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------
def candidate_peaks(data: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, ...]:
    """Peak voxel ``(x, y, z)`` of every label 1..max (NaN ignored), as int arrays."""
    n = int(labels.max()) if labels.size else 0
    if n == 0:
        return tuple(np.zeros(0, dtype=np.int64) for _ in range(3))
    work = np.where(np.isfinite(data), data, -np.inf)
    pos = np.array(ndimage.maximum_position(work, labels, np.arange(1, n + 1)),
                   dtype=np.int64).reshape(n, 3)
    return pos[:, 2], pos[:, 1], pos[:, 0]


def _peak_arrays(candidates: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if isinstance(candidates, Table):
        try:
            cols = [candidates[c] for c in ("peak_x", "peak_y", "peak_z")]
        except KeyError:
            raise ValueError("the catalogue needs peak_x, peak_y and peak_z columns") from None
        return tuple(np.asarray(getattr(c, "value", c), dtype=float) for c in cols)
    if isinstance(candidates, Mapping):
        return tuple(np.asarray(candidates[c], dtype=float)
                     for c in ("peak_x", "peak_y", "peak_z"))
    px, py, pz = candidates
    return (np.asarray(px, dtype=float), np.asarray(py, dtype=float),
            np.asarray(pz, dtype=float))


def match_candidates(
    candidates: Any,
    truth: Table,
    snr_min: float = 5.0,
    dpix: float = 2.0,
    dchan: float = 2.0,
) -> np.ndarray:
    """Index (row of ``truth``) of the truth clump each candidate matches, -1 if none.

    A candidate matches the nearest (on the sky) truth clump with ``snr_peak >=
    snr_min`` whose peak lies within ``dpix`` pixels on the sky and ``dchan`` channels
    in velocity of the candidate's peak voxel. Several candidates may match one clump.

    Parameters
    ----------
    candidates : Table, mapping or (peak_x, peak_y, peak_z)
        A :func:`~glue_ssclump.core.catalog.build_catalog` table (``peak_x/y/z``) or
        the peak voxel arrays (0-based, numpy ``data[z, y, x]``).
    truth : Table
        From :func:`make_synthetic_cube`.
    """
    px, py, pz = _peak_arrays(candidates)
    out = np.full(px.shape, -1, dtype=np.int64)
    bright = np.flatnonzero(np.asarray(truth["snr_peak"]) >= snr_min)
    if bright.size == 0 or px.size == 0:
        return out
    tx = np.asarray(getattr(truth["x"], "value", truth["x"]), dtype=float)[bright]
    ty = np.asarray(getattr(truth["y"], "value", truth["y"]), dtype=float)[bright]
    tz = np.asarray(getattr(truth["z"], "value", truth["z"]), dtype=float)[bright]
    tree = cKDTree(np.column_stack([tx, ty]))
    hits = tree.query_ball_point(np.column_stack([px, py]), r=dpix)
    for i, cand in enumerate(hits):
        if not cand:
            continue
        cand = np.asarray(cand)
        cand = cand[np.abs(tz[cand] - pz[i]) <= dchan]
        if cand.size:
            d2 = (tx[cand] - px[i]) ** 2 + (ty[cand] - py[i]) ** 2
            out[i] = bright[cand[np.argmin(d2)]]
    return out


def score_candidates(
    candidates: Any,
    truth: Table,
    snr_min: float = 5.0,
    dpix: float = 2.0,
    dchan: float = 2.0,
) -> np.ndarray:
    """True for each candidate whose peak lies near a truth clump of SNR >= ``snr_min``.

    See :func:`match_candidates` for the arguments; returns a bool array, one per
    candidate (``1 - mean`` is the false-candidate fraction).
    """
    return match_candidates(candidates, truth, snr_min, dpix, dchan) >= 0
