"""Synthetic PPV cubes whose truth is morphology, not signal-to-noise.

:func:`make_morph_cube` builds a ``(v, y, x)`` float32 cube in K (Galactic CAR WCS,
VRAD in **m/s**, beam- and velocity-correlated noise, NaN borders) from separate
components, each kept as its own noiseless model so that the truth can be decided
voxel by voxel:

* **compact clumps** - rotated 3D Gaussians (sky sigma 1-2.6 px, velocity sigma 1-2.5
  channels, a velocity gradient along the major axis), peak SNR log-uniform in
  ``clump_snr`` (partly below 3, so faint ones are not truth);
* **large clumps** - the same shape, sky sigma 4.5-7.5 px: detectors split them into
  several pieces; only the piece at the clump's own peak is true;
* **truncated clumps** - compact clumps whose peak lies 3-6 px inside a NaN blank or
  beyond the cube's edge: the visible part is a candidate whose peak is not the clump's;
* **filaments** - curved tubes (quadratic Bezier curves 40-110 px long, width sigma
  1.2-2 px) with a velocity gradient along them and regularly spaced beads (the tube's
  brightness oscillates between ``bead_contrast`` and 1 of its peak, period 5-9 px).
  Bead peaks are at SNR 5-15 (``filament_snr``); detectors cut a filament into many
  candidates, none of them true;
* **diffuse clouds** - a smooth clipped Gaussian random field (as
  :mod:`~glue_ssclump.core.synthetic`) peaking at ``diffuse_peak`` rms; ClumpFind
  fragments it into bright pieces, none of them true;
* noise, then NaN blanks: a border strip of irregular width on two sides of the
  sky and one rectangular hole.

Truth rule (:func:`morph_truth`).  A candidate is *true* when its peak voxel lies
within ``dpix`` (2) pixels on the sky and ``dchan`` (2) channels of the peak of an
injected clump (compact or large, not truncated) that

1. has an injected peak SNR >= ``snr_min`` (3), and
2. dominates the extended emission at its peak: the clump's own peak is at least
   ``dominance`` (1.0) times the filament + diffuse model there.

Everything else is false: noise peaks, filament beads, cloud fragments, off-peak
pieces of large clumps, truncated clumps, clumps fainter than SNR 3 and clumps
buried in brighter extended emission.  SNR alone does not decide: beads and cloud
fragments are as bright as most clumps.

Presets (:data:`MORPH_PRESETS`): ``'morph'`` (moderate filaments and clouds) and
``'morph_hard'`` (bright clumpy filaments and a strong diffuse cloud, the issue's
hard case).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from astropy.table import Table
from scipy.spatial import cKDTree

from .errors import SSClumpError
from .progress import Progress, ensure_progress
from .synthetic import SyntheticSettings, _add_clump, _add_noise, _fill_diffuse, synthetic_header

__all__ = [
    "MORPH_PRESETS",
    "MorphSettingsError",
    "MorphSettings",
    "make_morph_cube",
    "morph_truth",
    "candidate_kinds",
]

class MorphSettingsError(SSClumpError):
    """Unknown preset or unusable settings for :func:`make_morph_cube`."""


#: Kinds of injected objects in the truth table.
KINDS = ("compact", "large", "truncated", "filament")


@dataclass(frozen=True)
class MorphSettings:
    """What shapes a morphology-truth cube (see the module docstring).

    Attributes
    ----------
    shape : tuple of int
        ``(nv, ny, nx)``.
    rms, lag1, beam_fwhm : float
        Noise rms (K), its lag-1 velocity correlation, spatial beam FWHM (pixels).
    n_compact, n_large, n_truncated, n_filaments : int
        Objects of each kind per 100,000 voxels.
    clump_snr : (float, float)
        Compact-clump peak SNR, log-uniform.
    large_snr : (float, float)
        Large-clump peak SNR, log-uniform.
    filament_snr : (float, float)
        Filament bead peak SNR, uniform.
    bead_contrast : float
        Tube brightness between beads, as a fraction of the bead peak.
    diffuse_peak : float
        Peak of the diffuse cloud, rms (0 = none).
    diffuse_cover : float
        Fraction of the cube the cloud covers (about).
    nan_border : (int, int)
        Width range (pixels) of the blank strips on the low-x and high-y sides.
    """

    shape: tuple[int, int, int] = (64, 160, 160)
    rms: float = 0.15
    lag1: float = 0.4
    beam_fwhm: float = 2.0
    n_compact: float = 40.0
    n_large: float = 3.0
    n_truncated: float = 4.0
    n_filaments: float = 1.2
    clump_snr: tuple[float, float] = (2.0, 30.0)
    large_snr: tuple[float, float] = (6.0, 20.0)
    filament_snr: tuple[float, float] = (5.0, 15.0)
    bead_contrast: float = 0.45
    diffuse_peak: float = 8.0
    diffuse_cover: float = 0.35
    nan_border: tuple[int, int] = (4, 14)


MORPH_PRESETS: dict[str, MorphSettings] = {
    "morph": MorphSettings(),
    "morph_hard": MorphSettings(n_filaments=2.0, diffuse_peak=12.0, diffuse_cover=0.4,
                                filament_snr=(6.0, 15.0)),
}


def _settings(preset: str | MorphSettings, **overrides: Any) -> MorphSettings:
    if isinstance(preset, MorphSettings):
        base = preset
    else:
        if preset not in MORPH_PRESETS:
            raise MorphSettingsError(f"unknown preset {preset!r}; known: {', '.join(MORPH_PRESETS)}")
        base = MORPH_PRESETS[preset]
    given = {k: v for k, v in overrides.items() if v is not None}
    if "shape" in given:
        given["shape"] = tuple(int(n) for n in given["shape"])
    return replace(base, **given)


def _count(rate: float, shape: Sequence[int]) -> int:
    return int(round(rate * float(np.prod(shape)) / 1e5))


def _clump_params(n: int, rng: np.random.Generator, snr: tuple[float, float],
                  smaj: tuple[float, float], shape: Sequence[int], margin: float
                  ) -> dict[str, np.ndarray]:
    nv, ny, nx = shape
    lo, hi = math.log(snr[0]), math.log(snr[1])
    s_major = rng.uniform(*smaj, n)
    return {
        "snr": np.exp(rng.uniform(lo, hi, n)),
        "smaj": s_major,
        "smin": s_major * rng.uniform(0.55, 1.0, n),
        "pa": rng.uniform(0.0, 180.0, n),
        "sv": rng.uniform(1.0, 2.5, n),
        "grad": rng.uniform(-0.35, 0.35, n),
        "z": rng.uniform(4.0, nv - 5.0, n),
        "y": rng.uniform(margin, ny - 1 - margin, n),
        "x": rng.uniform(margin, nx - 1 - margin, n),
    }


def _add_filament(out: np.ndarray, rng: np.random.Generator, s: MorphSettings) -> dict:
    """Add one beaded, curved tube with a velocity gradient; return its description."""
    nv, ny, nx = out.shape
    length = rng.uniform(40.0, 110.0)
    ang = rng.uniform(0.0, np.pi)
    c = np.array([rng.uniform(10, ny - 10), rng.uniform(10, nx - 10)])
    d = np.array([np.sin(ang), np.cos(ang)])
    p0, p2 = c - 0.5 * length * d, c + 0.5 * length * d
    bend = rng.uniform(-0.35, 0.35) * length * np.array([-d[1], d[0]])
    p1 = c + bend
    width = rng.uniform(1.2, 2.0)
    sv = rng.uniform(1.2, 2.2)
    v0 = rng.uniform(12.0, nv - 13.0)
    dv = rng.uniform(-8.0, 8.0)  # channels from one end to the other
    period = rng.uniform(5.0, 9.0)
    peak = rng.uniform(*s.filament_snr) * s.rms
    phase = rng.uniform(0, 2 * np.pi)
    n_pts = int(length / 0.5)
    t = np.linspace(0.0, 1.0, n_pts)
    pts = ((1 - t) ** 2)[:, None] * p0 + (2 * (1 - t) * t)[:, None] * p1 + (t ** 2)[:, None] * p2
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
    amp = s.bead_contrast + (1 - s.bead_contrast) * 0.5 * (1 + np.cos(2 * np.pi * arc / period
                                                                      + phase))
    # Sum of sky Gaussians every 0.5 px along the curve: a tube of sky sigma ``width``.
    # The spacing-to-width ratio sets the tube's peak relative to one Gaussian
    # (sqrt(2 pi) width / 0.5), divided out so beads peak at ``peak``.
    norm = peak * 0.5 / (math.sqrt(2 * math.pi) * width)
    r = int(math.ceil(4 * width))
    rv = int(math.ceil(4 * sv))
    for (py, px), a, tt in zip(pts, amp, t, strict=True):
        zc = v0 + dv * (tt - 0.5)
        y0, y1 = max(0, int(py) - r), min(ny, int(py) + r + 2)
        x0, x1 = max(0, int(px) - r), min(nx, int(px) + r + 2)
        z0, z1 = max(0, int(zc) - rv), min(nv, int(zc) + rv + 2)
        if y0 >= y1 or x0 >= x1 or z0 >= z1:
            continue
        yy = np.arange(y0, y1)[:, None] - py
        xx = np.arange(x0, x1)[None, :] - px
        sky = np.exp(-0.5 * (yy ** 2 + xx ** 2) / width ** 2)
        spec = np.exp(-0.5 * ((np.arange(z0, z1) - zc) / sv) ** 2)
        out[z0:z1, y0:y1, x0:x1] += (norm * a * spec[:, None, None] * sky[None]).astype(
            np.float32)
    return {"y": float(c[0]), "x": float(c[1]), "z": float(v0), "snr": peak / s.rms,
            "smaj": length, "smin": width, "sv": sv, "pa": float(np.degrees(ang)),
            "grad": dv / length}


def _nan_mask(shape: Sequence[int], s: MorphSettings, rng: np.random.Generator
              ) -> np.ndarray:
    """Sky mask (ny, nx) of blanks: irregular strips on the low-x and high-y sides, a hole."""
    _, ny, nx = shape
    blank = np.zeros((ny, nx), bool)
    lo, hi = s.nan_border
    wx = np.interp(np.arange(ny), np.linspace(0, ny - 1, 6), rng.uniform(lo, hi, 6))
    blank[np.arange(nx)[None, :] < wx[:, None]] = True
    wy = np.interp(np.arange(nx), np.linspace(0, nx - 1, 6), rng.uniform(lo, hi, 6))
    blank[np.arange(ny)[:, None] >= ny - wy[None, :]] = True
    hy, hx = int(rng.uniform(0.3, 0.6) * ny), int(rng.uniform(0.3, 0.6) * nx)
    h = int(rng.uniform(6, 12))
    blank[hy:hy + h, hx:hx + h] = True
    return blank


def _truncated_positions(n: int, blank: np.ndarray, shape: Sequence[int],
                         rng: np.random.Generator) -> np.ndarray:
    """Peak positions (z, y, x) 3-6 px inside a blank or beyond the cube edge."""
    from scipy import ndimage

    nv, ny, nx = shape
    # distance of blank pixels to the nearest valid one
    depth = ndimage.distance_transform_edt(blank)
    inside = np.argwhere((depth >= 3) & (depth <= 6))
    out = np.empty((n, 3))
    for i in range(n):
        out[i, 0] = rng.uniform(6.0, nv - 7.0)
        if inside.size and rng.random() < 0.6:
            out[i, 1:] = inside[rng.integers(len(inside))]
        else:  # beyond the high-x or low-y edge (the sides without a blank strip)
            off = -rng.uniform(3.0, 6.0)
            if rng.random() < 0.5:
                out[i, 1:] = (rng.uniform(10, ny - 20), nx - 1 - off)
            else:
                out[i, 1:] = (off, rng.uniform(20, nx - 10))
    return out


def make_morph_cube(
    seed: int = 0,
    preset: str | MorphSettings = "morph",
    *,
    progress: Progress | None = None,
    **overrides: Any,
) -> tuple[np.ndarray, Any, Table, dict[str, np.ndarray]]:
    """A synthetic cube whose false candidates are structures, not only noise.

    Parameters
    ----------
    seed : int
        The same seed and settings give the same cube.
    preset : str or MorphSettings
        ``'morph'`` or ``'morph_hard'`` (:data:`MORPH_PRESETS`).
    progress : Progress, optional
    **overrides
        Any :class:`MorphSettings` field.

    Returns
    -------
    data : ndarray
        float32 ``(nv, ny, nx)`` in K, NaN where blank.
    header : astropy.io.fits.Header
        GLON-CAR / GLAT-CAR, VRAD in m/s.
    truth : astropy.table.Table
        One row per injected object: ``kind`` (compact / large / truncated /
        filament), ``x, y, z`` (peak or centre, pixels, may lie outside the cube for
        truncated clumps), ``snr_peak``, ``sigma_major``, ``sigma_minor``, ``sigma_v``,
        ``ext_at_peak`` (filament + diffuse model at the peak, rms) and ``is_target``
        (the clumps a candidate may match to be true).
    models : dict
        Noiseless ``'clumps'`` (compact + large + truncated) and ``'extended'``
        (filaments + diffuse) cubes in K, for diagnostics.
    """
    s = _settings(preset, **overrides)
    if len(s.shape) != 3 or min(s.shape) < 32:
        raise MorphSettingsError(f"shape must be (nv, ny, nx) with every side >= 32, got {s.shape}")
    if not s.rms > 0:
        raise MorphSettingsError(f"rms must be positive, got {s.rms}")
    progress = ensure_progress(progress)
    rngs = [np.random.default_rng(q) for q in np.random.SeedSequence(int(seed)).spawn(6)]
    r_clump, r_fil, r_diff, r_noise, r_nan, r_trunc = rngs
    shape = s.shape
    extended = np.zeros(shape, np.float32)
    diffuse_settings = SyntheticSettings(
        shape=shape, rms=s.rms, diffuse_peak=s.diffuse_peak, diffuse_cover=s.diffuse_cover,
        diffuse_scale=(6.0, 14.0), diffuse_detail_scale=(3.0, 5.0), diffuse_detail_weight=0.3)
    _fill_diffuse(extended, diffuse_settings, r_diff, progress.span(0.0, 0.15))
    fils = [_add_filament(extended, r_fil, s) for _ in range(_count(s.n_filaments, shape))]
    progress.update(0.3)

    blank = _nan_mask(shape, s, r_nan)
    comp = _clump_params(_count(s.n_compact, shape), r_clump, s.clump_snr, (1.0, 2.6),
                         shape, 3.0)
    large = _clump_params(_count(s.n_large, shape), r_clump, s.large_snr, (4.5, 7.5),
                          shape, 8.0)
    trunc = _clump_params(_count(s.n_truncated, shape), r_trunc, (8.0, 25.0), (1.5, 2.6),
                          shape, 3.0)
    pos = _truncated_positions(len(trunc["x"]), blank, shape, r_trunc)
    trunc["z"], trunc["y"], trunc["x"] = pos[:, 0], pos[:, 1], pos[:, 2]

    clumps = np.zeros(shape, np.float32)
    rows = []
    for kind, par in (("compact", comp), ("large", large), ("truncated", trunc)):
        for i in range(len(par["x"])):
            _add_clump(clumps, par["snr"][i] * s.rms, par["z"][i], par["y"][i], par["x"][i],
                       par["smaj"][i], par["smin"][i], par["pa"][i], par["sv"][i],
                       par["grad"][i])
            rows.append((kind, par["x"][i], par["y"][i], par["z"][i], par["snr"][i],
                         par["smaj"][i], par["smin"][i], par["sv"][i]))
    for f in fils:
        rows.append(("filament", f["x"], f["y"], f["z"], f["snr"], f["smaj"], f["smin"],
                     f["sv"]))
    progress.update(0.5)

    data = clumps + extended
    noise_settings = SyntheticSettings(shape=shape, rms=s.rms, lag1=s.lag1,
                                       beam_fwhm=s.beam_fwhm)
    _add_noise(data, noise_settings, r_noise, progress.span(0.5, 0.95))
    data[:, blank] = np.nan

    truth = Table(rows=rows, names=("kind", "x", "y", "z", "snr_peak", "sigma_major",
                                    "sigma_minor", "sigma_v"))
    nv, ny, nx = shape
    zi = np.clip(np.round(truth["z"]).astype(int), 0, nv - 1)
    yi = np.clip(np.round(truth["y"]).astype(int), 0, ny - 1)
    xi = np.clip(np.round(truth["x"]).astype(int), 0, nx - 1)
    truth["ext_at_peak"] = extended[zi, yi, xi] / s.rms
    truth["ext_at_peak"].description = "filament + diffuse model at the peak voxel, rms"
    truth["x"].description = "peak (clumps) or centre (filaments), 0-based pixel"
    truth["sigma_major"].description = "pixels; for a filament its length"
    truth["sigma_minor"].description = "pixels; for a filament its width"
    truth["sigma_v"].description = "channels"
    truth["is_target"] = np.isin(truth["kind"], ("compact", "large"))
    truth.meta["settings"] = {k: (list(v) if isinstance(v, tuple) else v)
                              for k, v in asdict(s).items()}
    truth.meta["seed"] = int(seed)

    header = synthetic_header(shape, beam_fwhm=s.beam_fwhm)
    header["CDELT3"] = header["CDELT3"] * 1000.0
    header["CRVAL3"] = header["CRVAL3"] * 1000.0
    header["CUNIT3"] = "m/s"
    header["SYNSEED"] = (int(seed), "synthetic cube seed")
    header["SYNRMS"] = (s.rms, "[K] injected noise rms")
    header["HISTORY"] = f"glue_ssclump morphology-truth cube, seed {int(seed)}"
    progress.update(1.0)
    return data, header, truth, {"clumps": clumps, "extended": extended}


def morph_truth(
    candidates: Table,
    truth: Table,
    snr_min: float = 3.0,
    dominance: float = 1.0,
    dpix: float = 2.0,
    dchan: float = 2.0,
) -> np.ndarray:
    """True for each candidate whose peak is at a dominant injected clump (module docstring).

    Parameters
    ----------
    candidates : Table
        A catalogue with ``peak_x``, ``peak_y``, ``peak_z`` (0-based voxels).
    truth : Table
        From :func:`make_morph_cube`.
    snr_min : float
        Lowest injected peak SNR of a true clump.
    dominance : float
        The clump's peak must be at least this many times the extended model there.
    dpix, dchan : float
        Largest sky / velocity distance between the candidate's peak and the clump's.

    Returns
    -------
    ndarray of bool
    """
    px, py, pz = (np.asarray(getattr(candidates[c], "value", candidates[c]), float)
                  for c in ("peak_x", "peak_y", "peak_z"))
    out = np.zeros(px.shape, bool)
    snr = np.asarray(truth["snr_peak"], float)
    ok = (np.asarray(truth["is_target"], bool) & (snr >= snr_min)
          & (snr >= dominance * np.asarray(truth["ext_at_peak"], float)))
    good = np.flatnonzero(ok)
    if good.size == 0 or px.size == 0:
        return out
    tx, ty, tz = (np.asarray(truth[c], float)[good] for c in ("x", "y", "z"))
    hits = cKDTree(np.column_stack([tx, ty])).query_ball_point(np.column_stack([px, py]),
                                                               r=dpix)
    for i, cand in enumerate(hits):
        if cand and np.any(np.abs(tz[np.asarray(cand)] - pz[i]) <= dchan):
            out[i] = True
    return out


def candidate_kinds(candidates: Table, truth: Table, models: dict[str, np.ndarray],
                    rms: float, is_true: np.ndarray) -> np.ndarray:
    """What each candidate is, for diagnostics: the component that dominates its peak.

    'true' for true candidates; otherwise 'noise' (model under 2 rms at the peak),
    'extended' (filament or cloud brighter than the clumps there), 'clump-other'
    (a clump dominates but the candidate is not at a true clump's peak: a piece of
    a large clump, a truncated clump, a faint or buried clump).
    """
    px, py, pz = (np.asarray(getattr(candidates[c], "value", candidates[c]), int)
                  for c in ("peak_x", "peak_y", "peak_z"))
    cl = models["clumps"][pz, py, px]
    ex = models["extended"][pz, py, px]
    kind = np.where(cl + ex < 2 * rms, "noise", np.where(ex > cl, "extended", "clump-other"))
    return np.where(is_true, "true", kind).astype("U11")
