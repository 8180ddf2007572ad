"""The objects of a morphology-truth cube: clump draws, beaded filaments and blanks.

Used by :func:`~glue_ssclump.core.synthetic_morph.make_morph_cube`; see
:mod:`.synthetic_morph` for what each kind of object is for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

if TYPE_CHECKING:
    from .synthetic_morph import MorphSettings


def count_per_volume(rate: float, shape: Sequence[int]) -> int:
    """Number of objects at ``rate`` per 100,000 voxels in a cube of ``shape``."""
    return int(round(rate * float(np.prod(shape)) / 1e5))


def clump_params(n: int, rng: np.random.Generator, snr: tuple[float, float],
                 smaj: tuple[float, float], shape: Sequence[int], margin: float
                 ) -> dict[str, np.ndarray]:
    """Parameters of ``n`` clumps in :func:`~.synthetic_clumps.draw_clumps`' form.

    Parameters
    ----------
    n : int
        Number of clumps.
    rng : numpy.random.Generator
        Their random stream.
    snr : (float, float)
        Peak SNR range, log-uniform.
    smaj : (float, float)
        Major-axis sigma range, pixels.
    shape : (nv, ny, nx)
        The cube's shape.
    margin : float
        Smallest distance of a peak from the sky edges, pixels.

    Returns
    -------
    dict of ndarray
        ``snr, smaj, smin, pa, sv, grad, z, y, x``.
    """
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



def add_filament(out: np.ndarray, rng: np.random.Generator, s: MorphSettings) -> dict:
    """Add one beaded, curved tube with a velocity gradient; return its description.

    Parameters
    ----------
    out : ndarray of float32
        The ``(nv, ny, nx)`` model cube, changed in place.
    rng : numpy.random.Generator
        The filaments' random stream.
    s : MorphSettings
        Bead SNR range, contrast and rms.

    Returns
    -------
    dict
        Centre ``x, y, z``, ``snr`` (bead peak), ``smaj`` (length), ``smin`` (width),
        ``sv``, ``pa`` (deg) and ``grad`` (channels per pixel).
    """
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



def nan_mask(shape: Sequence[int], s: MorphSettings, rng: np.random.Generator
             ) -> np.ndarray:
    """Sky mask (ny, nx) of blanks: irregular strips on the low-x and high-y sides, a hole.

    Parameters
    ----------
    shape : (nv, ny, nx)
        The cube's shape.
    s : MorphSettings
        The strips' width range (``nan_border``).
    rng : numpy.random.Generator
        The blanks' random stream.

    Returns
    -------
    ndarray of bool
        True where the sky is blank.
    """
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



def truncated_positions(n: int, blank: np.ndarray, shape: Sequence[int],
                        rng: np.random.Generator) -> np.ndarray:
    """Peak positions (z, y, x) 3-6 px inside a blank or beyond the cube edge.

    Parameters
    ----------
    n : int
        Number of positions.
    blank : ndarray of bool
        The sky's blanks (:func:`nan_mask`).
    shape : (nv, ny, nx)
        The cube's shape.
    rng : numpy.random.Generator
        The truncated clumps' random stream.

    Returns
    -------
    ndarray, shape (n, 3)
    """
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

