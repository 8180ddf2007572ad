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

from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.table import Table

from .errors import SSClumpError
from .progress import Progress, ensure_progress
from .synthetic_clumps import add_clumps
from .synthetic_fields import add_noise, fill_diffuse
from .synthetic_header import synthetic_header
from .synthetic_morph_parts import (
    add_filament,
    clump_params,
    count_per_volume,
    nan_mask,
    truncated_positions,
)
from .synthetic_settings import apply_overrides, settings_meta
from .synthetic_truth import match_peaks, peak_arrays

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
    return apply_overrides(base, overrides)


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
    fill_diffuse(extended, r_diff, progress.span(0.0, 0.15), rms=s.rms,
                 diffuse_peak=s.diffuse_peak, diffuse_scale=(6.0, 14.0),
                 diffuse_detail_scale=(3.0, 5.0), diffuse_detail_weight=0.3,
                 diffuse_cover=s.diffuse_cover)
    fils = [add_filament(extended, r_fil, s)
            for _ in range(count_per_volume(s.n_filaments, shape))]
    progress.update(0.3)

    blank = nan_mask(shape, s, r_nan)
    comp = clump_params(count_per_volume(s.n_compact, shape), r_clump, s.clump_snr,
                        (1.0, 2.6), shape, 3.0)
    large = clump_params(count_per_volume(s.n_large, shape), r_clump, s.large_snr,
                         (4.5, 7.5), shape, 8.0)
    trunc = clump_params(count_per_volume(s.n_truncated, shape), r_trunc, (8.0, 25.0),
                         (1.5, 2.6), shape, 3.0)
    pos = truncated_positions(len(trunc["x"]), blank, shape, r_trunc)
    trunc["z"], trunc["y"], trunc["x"] = pos[:, 0], pos[:, 1], pos[:, 2]

    clumps = np.zeros(shape, np.float32)
    rows = []
    for kind, par in (("compact", comp), ("large", large), ("truncated", trunc)):
        add_clumps(clumps, par, s.rms)
        for i in range(len(par["x"])):
            rows.append((kind, par["x"][i], par["y"][i], par["z"][i], par["snr"][i],
                         par["smaj"][i], par["smin"][i], par["sv"][i]))
    for f in fils:
        rows.append(("filament", f["x"], f["y"], f["z"], f["snr"], f["smaj"], f["smin"],
                     f["sv"]))
    progress.update(0.5)

    data = clumps + extended
    add_noise(data, r_noise, progress.span(0.5, 0.95), rms=s.rms, lag1=s.lag1,
              beam_fwhm=s.beam_fwhm)
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
    truth.meta["settings"] = settings_meta(s)
    truth.meta["seed"] = int(seed)

    header = synthetic_header(shape, beam_fwhm=s.beam_fwhm, velocity_unit="m/s")
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
    px, py, pz = peak_arrays(candidates)
    snr = np.asarray(truth["snr_peak"], float)
    ok = (np.asarray(truth["is_target"], bool) & (snr >= snr_min)
          & (snr >= dominance * np.asarray(truth["ext_at_peak"], float)))
    tx, ty, tz = (np.asarray(truth[c], float)[ok] for c in ("x", "y", "z"))
    return match_peaks(px, py, pz, tx, ty, tz, dpix, dchan) >= 0


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
