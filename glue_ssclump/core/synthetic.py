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

The pieces live in :mod:`.synthetic_settings` (settings, presets),
:mod:`.synthetic_header` (the WCS header), :mod:`.synthetic_fields` (noise, diffuse
emission), :mod:`.synthetic_clumps` (the clumps) and :mod:`.synthetic_truth` (truth
table, scoring); this module builds and writes cubes from them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

from .progress import Progress, ensure_progress
from .synthetic_clumps import add_clumps, draw_clumps
from .synthetic_fields import add_noise, fill_diffuse
from .synthetic_header import synthetic_header
from .synthetic_settings import (
    PRESET_FALSE_FRACTIONS,
    PRESETS,
    SyntheticSettings,
    resolve_settings,
)
from .synthetic_truth import candidate_peaks, match_candidates, score_candidates, truth_table

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
    s = resolve_settings(preset, shape=shape, rms=rms, **settings)
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
    fill_diffuse(data, r_diffuse, progress.span(0.0, 0.3, "synthetic: diffuse emission"),
                 rms=s.rms, diffuse_peak=s.diffuse_peak, diffuse_scale=s.diffuse_scale,
                 diffuse_detail_scale=s.diffuse_detail_scale,
                 diffuse_detail_weight=s.diffuse_detail_weight, diffuse_cover=s.diffuse_cover)
    add_noise(data, r_noise, progress.span(0.3, 0.8, "synthetic: noise"),
              rms=s.rms, lag1=s.lag1, beam_fwhm=s.beam_fwhm)
    clumps = draw_clumps(int(n_clumps), s, r_clumps)
    add_clumps(data, clumps, s.rms, progress.span(0.8, 1.0, "synthetic: clumps"))
    progress.update(1.0)
    truth = truth_table(clumps, s, header)
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
    few blocks of :data:`~.synthetic_fields.CHUNK_VOXELS` voxels.
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


