"""Truth tables of synthetic cubes and the scoring of detector candidates against them.

:func:`truth_table` lists every injected clump; :func:`score_candidates` calls a
candidate *true* when a truth clump of peak SNR >= ``snr_min`` lies within ``dpix``
pixels (on the sky) and ``dchan`` channels of its peak voxel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from scipy import ndimage
from scipy.spatial import cKDTree

from .synthetic_settings import SyntheticSettings, settings_meta


def truth_table(clumps: dict[str, np.ndarray], s: SyntheticSettings,
                header: fits.Header) -> Table:
    """One row per injected clump, with its sky and velocity position from ``header``.

    Parameters
    ----------
    clumps : dict of ndarray
        Clump parameters (:func:`~.synthetic_clumps.draw_clumps`).
    s : SyntheticSettings
        The cube's settings (rms; stored in ``meta['settings']``).
    header : astropy.io.fits.Header
        The cube's header (WCS, channel width).

    Returns
    -------
    astropy.table.Table
        clump_id, x, y, z, lon, lat, vel, peak, snr_peak, sigma_major, sigma_minor,
        pa, sigma_v, grad.
    """
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
    t.meta["settings"] = settings_meta(s)
    return t


def candidate_peaks(data: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """Peak voxel ``(x, y, z)`` of every label 1..max (NaN ignored), as int arrays."""
    n = int(mask.max()) if mask.size else 0
    if n == 0:
        return tuple(np.zeros(0, dtype=np.int64) for _ in range(3))
    work = np.where(np.isfinite(data), data, -np.inf)
    pos = np.array(ndimage.maximum_position(work, mask, np.arange(1, n + 1)),
                   dtype=np.int64).reshape(n, 3)
    return pos[:, 2], pos[:, 1], pos[:, 0]



def peak_arrays(candidates: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidates' peak voxels ``(peak_x, peak_y, peak_z)`` as float arrays.

    Parameters
    ----------
    candidates : Table, mapping or (peak_x, peak_y, peak_z)
        A catalogue with ``peak_x/y/z`` columns, or the arrays themselves.

    Returns
    -------
    (ndarray, ndarray, ndarray)
    """
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


def match_peaks(px: np.ndarray, py: np.ndarray, pz: np.ndarray, tx: np.ndarray,
                ty: np.ndarray, tz: np.ndarray, dpix: float, dchan: float) -> np.ndarray:
    """Nearest (on the sky) truth peak within ``dpix`` pixels and ``dchan`` channels.

    Parameters
    ----------
    px, py, pz : ndarray
        Candidate peaks (pixels, channels).
    tx, ty, tz : ndarray
        Truth peaks.
    dpix, dchan : float
        Largest sky / velocity distance.

    Returns
    -------
    ndarray of int64
        For each candidate, the index into the truth arrays of its match, -1 if none.
    """
    out = np.full(px.shape, -1, dtype=np.int64)
    if tx.size == 0 or px.size == 0:
        return out
    tree = cKDTree(np.column_stack([tx, ty]))
    hits = tree.query_ball_point(np.column_stack([px, py]), r=dpix)
    for i, cand in enumerate(hits):
        if not cand:
            continue
        cand = np.asarray(cand)
        cand = cand[np.abs(tz[cand] - pz[i]) <= dchan]
        if cand.size:
            d2 = (tx[cand] - px[i]) ** 2 + (ty[cand] - py[i]) ** 2
            out[i] = cand[np.argmin(d2)]
    return out


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
        From :func:`~glue_ssclump.core.synthetic.make_synthetic_cube`.
    snr_min : float
        Lowest injected peak SNR of a clump that can be matched.
    dpix, dchan : float
        Largest sky / velocity distance between the two peaks.

    Returns
    -------
    ndarray of int64
        One row index (or -1) per candidate.
    """
    px, py, pz = peak_arrays(candidates)
    bright = np.flatnonzero(np.asarray(truth["snr_peak"]) >= snr_min)
    tx, ty, tz = (np.asarray(getattr(truth[c], "value", truth[c]), dtype=float)[bright]
                  for c in ("x", "y", "z"))
    out = match_peaks(px, py, pz, tx, ty, tz, dpix, dchan)
    hit = out >= 0
    out[hit] = bright[out[hit]]
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
