"""Injected clumps of a synthetic cube: drawing their parameters and adding them.

A clump is a rotated 3D Gaussian: major / minor sky axes at a position angle, a
velocity dispersion and a velocity gradient along the major axis.  Its parameters are
kept as a dict of equal-length arrays (``x, y, z, snr, smaj, smin, pa, sv, grad``),
the form every generator here uses.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .progress import Progress
from .synthetic_settings import SyntheticSettings


def draw_clumps(n: int, s: SyntheticSettings, rng: np.random.Generator
                ) -> dict[str, np.ndarray]:
    """Parameters of ``n`` clumps, drawn from the ranges in ``s``.

    A fraction ``s.overlap_fraction`` of them is moved 1.5-3 sigma from an earlier one.

    Parameters
    ----------
    n : int
        Number of clumps.
    s : SyntheticSettings
        The ranges (and the cube shape).
    rng : numpy.random.Generator
        The clumps' random stream.

    Returns
    -------
    dict of ndarray
        ``x, y, z`` (peak, pixels), ``snr``, ``smaj``, ``smin`` (pixels), ``pa`` (deg),
        ``sv`` (channels), ``grad`` (channels per pixel).
    """
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



def add_clump(out: np.ndarray, peak: float, z0: float, y0: float, x0: float,
              smaj: float, smin: float, pa_deg: float, sv: float, grad: float) -> None:
    """Add ``peak * exp(-(u^2/a^2 + w^2/b^2 + (z - z0 - grad*u)^2/sv^2)/2)`` in a box.

    Parameters
    ----------
    out : ndarray of float32
        The ``(nv, ny, nx)`` cube, changed in place.
    peak : float
        Peak value, K.
    z0, y0, x0 : float
        Peak position, pixels (may lie outside the cube).
    smaj, smin : float
        Sky dispersions along the major and minor axes, pixels.
    pa_deg : float
        Major axis angle from the +x pixel axis towards +y, deg.
    sv : float
        Velocity dispersion, channels.
    grad : float
        Velocity gradient along the major axis, channels per pixel.
    """
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


def add_clumps(out: np.ndarray, clumps: Mapping[str, np.ndarray], rms: float,
               progress: Progress | None = None) -> None:
    """Add every clump of a parameter dict (:func:`draw_clumps`' form) to ``out``.

    Parameters
    ----------
    out : ndarray of float32
        The ``(nv, ny, nx)`` cube, changed in place.
    clumps : mapping of ndarray
        ``x, y, z, snr, smaj, smin, pa, sv, grad``, one entry per clump.
    rms : float
        Noise rms, K: a clump's peak is ``snr * rms``.
    progress : Progress, optional
        Told the fraction done every 256 clumps.
    """
    n = len(clumps["x"])
    for i in range(n):
        add_clump(out, clumps["snr"][i] * rms, clumps["z"][i], clumps["y"][i],
                  clumps["x"][i], clumps["smaj"][i], clumps["smin"][i], clumps["pa"][i],
                  clumps["sv"][i], clumps["grad"][i])
        if progress is not None and i % 256 == 0:
            progress.update(i / max(n, 1))
