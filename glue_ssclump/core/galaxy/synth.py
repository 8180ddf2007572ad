"""Synthetic clumpy galaxies with truth (the training and benchmark set).

Neither the Galaxy Zoo: Clump Scout labels nor the authors' weights are available, so
the detector is trained on galaxies built here, following METHOD section 7:

- host: Sersic disc (n = 1) plus a Sersic bulge (n = 2.5-4), random size, inclination,
  angle, bulge fraction; g-r and r-i colours of a star-forming disc (bulge redder);
- PSF: Moffat (beta 2.5-4.5) with the r-band FWHM drawn from the paper's SDSS range
  (0.60-2.08 arcsec, median 1.12) at 0.15-0.30 arcsec / px (the cut-outs' 0.2 median),
  g slightly broader and i slightly narrower;
- clumps ('clump', class 1): PSF-convolved points with blue colours, clump-to-galaxy
  r flux ratios log-uniform over 0.3 %-20 %, 3 in 4 inside one disc effective radius
  (Adams et al. 2022 placed 75 % in the inner galaxy);
- foreground stars ('odd', class 2): point sources with stellar-locus colours over the
  galaxy, about 0.3 per normal clump (the volunteers' odd : normal ratio 0.293);
- sky plus Poisson noise (gain 1), sky subtracted as in survey images;
- with ``host="structured"`` (or half of ``"mixed"``), spiral arms, flocculent texture,
  a bar and dust lanes on the disc (:mod:`.synth_structure`, which states the truth rule:
  host structure is extended, so the injected clumps and stars stay the only truth).

The image is the central 200 x 200 px the paper trains on.  Truth boxes are squares of
half-side one (observed) FWHM, at least 3 px, centred on each source.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from astropy.table import Table

from .image import GalaxyError, GalaxyImage, image_from_planes
from .synth_structure import (
    CLUMP_SIZE_FWHM,
    HOSTS,
    MIXED_STRUCTURED_P,
    gaussian_spot,
    host_structure,
)

__all__ = ["synth_galaxy", "synth_galaxies", "moffat_psf", "truth_boxes", "CLASS_NAMES",
           "HOSTS"]

#: class_id -> class name (0 is torchvision's background)
CLASS_NAMES = {1: "clump", 2: "odd"}
#: flux ratio range of injected clumps (r band, clump / host)
FLUX_RATIO_RANGE = (0.003, 0.20)
PIXEL_SCALE_RANGE = (0.15, 0.30)     # arcsec / px
FWHM_ARCSEC = (0.60, 1.12, 2.08)     # min, median, max (Popp et al., appendix A1)
FWHM_PIX_RANGE = (2.5, 12.0)
#: below this intrinsic FWHM (px) a clump is drawn as a point (a narrower Gaussian is
#: under-sampled on the pixel grid)
RESOLVED_MIN_PIX = 0.7


def moffat_psf(fwhm: float, beta: float, size: int | None = None) -> np.ndarray:
    """A normalised Moffat kernel (odd size, about 8 FWHM across)."""
    if size is None:
        size = int(2 * np.ceil(4 * fwhm) + 1)
    half = size // 2
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    return _moffat(xx, yy, fwhm, beta, norm=True)


def _moffat(dx: np.ndarray, dy: np.ndarray, fwhm: float, beta: float, norm: bool) -> np.ndarray:
    gamma = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    prof = (1.0 + (dx * dx + dy * dy) / gamma**2) ** (-beta)
    if norm:
        prof = prof / prof.sum()
    else:
        # analytic total so a point source near the edge loses the flux it should
        prof = prof * (beta - 1.0) / (np.pi * gamma**2)
    return prof


def truth_boxes(x: np.ndarray, y: np.ndarray, fwhm: float | np.ndarray,
                shape: tuple[int, int]) -> np.ndarray:
    """Square boxes ``(n, 4)`` x_min, y_min, x_max, y_max of half-side max(FWHM, 3 px);
    ``fwhm`` is the PSF's, or per source its observed FWHM."""
    h = np.maximum(np.asarray(fwhm, dtype=np.float64), 3.0)
    ny, nx = shape
    boxes = np.stack([x - h, y - h, x + h, y + h], axis=1) if len(x) else np.zeros((0, 4))
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], -0.5, nx - 0.5)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], -0.5, ny - 0.5)
    return boxes.astype(np.float32)


def _sersic(shape, amplitude, r_eff, n, x0, y0, ellip, theta) -> np.ndarray:
    from astropy.modeling.models import Sersic2D

    ny, nx = shape
    # 3x3 sub-pixel sampling: the bulge's cusp is under-sampled at one point per pixel
    sub = (np.arange(3) - 1) / 3.0
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    model = Sersic2D(amplitude=amplitude, r_eff=r_eff, n=n, x_0=x0, y_0=y0, ellip=ellip,
                     theta=theta)
    out = np.zeros(shape)
    for dy in sub:
        for dx in sub:
            out += model(xx + dx, yy + dy)
    return out / 9.0


def _place(rng: np.random.Generator, n: int, x0: float, y0: float, r_eff: float, q: float,
           theta: float, inner_p: float, taken: list[tuple[float, float]], min_sep: float,
           shape: tuple[int, int], margin: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    ny, nx = shape
    for _ in range(n):
        for _attempt in range(60):
            if rng.random() < inner_p:
                r = r_eff * np.sqrt(rng.uniform(0.04, 1.0))
            else:
                r = r_eff * rng.uniform(1.0, 2.3)
            phi = rng.uniform(0, 2 * np.pi)
            # on the inclined disc: minor axis shortened by q
            u, v = r * np.cos(phi), r * q * np.sin(phi)
            x = x0 + u * np.cos(theta) - v * np.sin(theta)
            y = y0 + u * np.sin(theta) + v * np.cos(theta)
            if not (margin <= x <= nx - 1 - margin and margin <= y <= ny - 1 - margin):
                continue
            if all((x - a) ** 2 + (y - b) ** 2 >= min_sep**2 for a, b in taken + out):
                out.append((float(x), float(y)))
                break
    return out


def synth_galaxy(rng: np.random.Generator | int, size: int = 200,
                 n_clumps: int | None = None, n_stars: int | None = None,
                 host: str = "smooth") -> tuple[GalaxyImage, Table]:
    """One synthetic clumpy galaxy and its truth table.

    Parameters
    ----------
    rng : numpy Generator or int
        Random stream (or a seed).
    size : int
        Image side in pixels (200: the paper's central crop).
    n_clumps, n_stars : int, optional
        Numbers of clumps and foreground stars (default: drawn, 0-6 clumps with a mean
        near 2.6, 0-2 stars with a mean near 0.75).
    host : str
        ``"smooth"`` (Sersic disc + bulge), ``"structured"`` (arms, texture, maybe a bar
        and dust lanes) or ``"mixed"`` (structured with probability 0.5).  The structure
        comes from its own random stream, so the same ``rng`` gives the same clumps, stars,
        PSF and disc whatever ``host`` is.

    Returns
    -------
    image : GalaxyImage
        Planes g, r, i (sky-subtracted counts), the Lupton RGB, no WCS,
        ``psf_fwhm_pix`` the r-band FWHM.
    truth : Table
        One row per source: ``x``, ``y`` (pix, numpy column / row), ``x_min``, ``y_min``,
        ``x_max``, ``y_max`` (the training box), ``class`` ('clump' / 'odd'),
        ``class_id`` (1 / 2), ``flux_ratio`` (r-band source flux / host flux, where the
        host is disc + bulge + clumps inside the image), ``flux_r``, ``g_r``, ``r_i``,
        ``size_fwhm`` (intrinsic FWHM / PSF FWHM: 0 for points; a resolved clump's box
        has the half-side of its observed FWHM).
        ``meta``: ``psf_fwhm_pix``, ``host_flux_r``, ``sky``, ``r_eff``, ``x0``, ``y0``,
        ``host`` ('smooth' / 'structured') and, for a structured host, ``structure``.
    """
    from scipy.signal import fftconvolve

    if host not in HOSTS:
        raise GalaxyError(f"host must be one of {', '.join(HOSTS)}, not {host!r}")
    rng = np.random.default_rng(rng)
    # spawned before any draw and without advancing rng: the clumps do not depend on it
    srng = rng.spawn(1)[0] if host != "smooth" else None
    shape = (size, size)
    scale = rng.uniform(*PIXEL_SCALE_RANGE)
    # log-normal around the median seeing, clipped to the paper's range
    fwhm_as = float(np.clip(FWHM_ARCSEC[1] * np.exp(rng.normal(0.0, 0.3)),
                            FWHM_ARCSEC[0], FWHM_ARCSEC[2]))
    fwhm = float(np.clip(fwhm_as / scale, *FWHM_PIX_RANGE))
    beta = rng.uniform(2.5, 4.5)
    band_fwhm = (fwhm * rng.uniform(1.0, 1.1), fwhm, fwhm * rng.uniform(0.9, 1.0))

    c = (size - 1) / 2.0
    x0, y0 = c + rng.normal(0, 2.0), c + rng.normal(0, 2.0)
    r_eff = rng.uniform(0.075, 0.17) * size
    ellip = rng.uniform(0.0, 0.6)
    theta = rng.uniform(0, np.pi)
    bulge_frac = rng.uniform(0.0, 0.5)
    sky = rng.uniform(50.0, 200.0)
    sigma_sky = np.sqrt(sky)
    surf_e = rng.uniform(6.0, 25.0) * sigma_sky          # disc r-band SB at r_eff
    disc = _sersic(shape, 1.0, r_eff, 1.0, x0, y0, ellip, theta)
    bulge_n = rng.uniform(2.5, 4.0)
    bulge = _sersic(shape, 1.0, r_eff * rng.uniform(0.12, 0.3), bulge_n, x0, y0,
                    ellip * 0.5, theta)
    disc *= surf_e
    bulge *= bulge_frac / (1 - bulge_frac) * disc.sum() / max(bulge.sum(), 1e-12)
    structure = None
    if srng is not None and (host == "structured" or srng.random() < MIXED_STRUCTURED_P):
        structure = host_structure(srng, disc, x0, y0, r_eff, 1.0 - ellip, theta, fwhm)
        host_r = float(structure.light(1).sum() + bulge.sum())
    else:
        host_r = disc.sum() + bulge.sum()

    g_r_disc, r_i_disc = rng.uniform(0.35, 0.7), rng.uniform(0.15, 0.35)
    g_r_bulge, r_i_bulge = g_r_disc + rng.uniform(0.1, 0.3), r_i_disc + rng.uniform(0.05, 0.15)

    def colour_factors(g_r: float, r_i: float) -> tuple[float, float, float]:
        return 10 ** (-0.4 * g_r), 1.0, 10 ** (0.4 * r_i)

    if n_clumps is None:
        n_clumps = int(min(rng.poisson(2.3) + (1 if rng.random() < 0.3 else 0), 6))
    if n_stars is None:
        n_stars = int(min(rng.poisson(0.75), 2))
    min_sep = 2.0 * fwhm
    q = 1.0 - ellip
    # never on top of the bulge: an unresolved clump there is the bulge
    taken: list[tuple[float, float]] = [(x0, y0)]
    clump_xy = _place(rng, n_clumps, x0, y0, r_eff, q, theta, 0.75, taken, min_sep, shape,
                      margin=0.06 * size)
    star_xy = _place(rng, n_stars, x0, y0, r_eff * 1.3, 1.0, 0.0, 0.3, taken + clump_xy,
                     min_sep, shape, margin=0.06 * size)
    lo, hi = np.log(FLUX_RATIO_RANGE[0]), np.log(FLUX_RATIO_RANGE[1])
    clump_ratio = np.exp(rng.uniform(lo, hi, len(clump_xy)))
    # the flux ratio is to the host including its clumps (what photometry of the host sees)
    clump_frac = clump_ratio.sum()
    if clump_frac >= 0.8:  # keep the host at least 20 % of its own light
        clump_ratio *= 0.8 / clump_frac
    clump_flux = clump_ratio * host_r / (1.0 - clump_ratio.sum())
    host_total = host_r + clump_flux.sum()
    star_ratio = np.exp(rng.uniform(np.log(0.01), np.log(0.4), len(star_xy)))
    star_flux = star_ratio * host_total

    clump_col = [(rng.uniform(-0.25, 0.3), rng.uniform(-0.25, 0.1)) for _ in clump_xy]
    # intrinsic FWHM / PSF FWHM: points on smooth hosts, up to 1.2 on structured ones
    extent = np.zeros(len(clump_xy) + len(star_xy))
    if structure is not None:
        extent[:len(clump_xy)] = srng.uniform(*CLUMP_SIZE_FWHM, len(clump_xy))
    star_col = []
    for _ in star_xy:
        g_r = rng.uniform(0.3, 1.45)
        star_col.append((g_r, float(np.clip(0.45 * g_r - 0.1 + rng.normal(0, 0.05), -0.1, 1.0))))

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    planes = np.zeros((3, size, size))
    fd, fb = colour_factors(g_r_disc, r_i_disc), colour_factors(g_r_bulge, r_i_bulge)
    if structure is not None:  # star-forming arms: bluer than the disc
        fa = colour_factors(g_r_disc - structure.arm_g_r, r_i_disc - 0.5 * structure.arm_g_r)
    for k in range(3):
        psf = moffat_psf(band_fwhm[k], beta)
        if structure is None:
            light = disc * fd[k] + bulge * fb[k]
        else:
            light = bulge * fb[k] + structure.light(k, fd[k], fa[k], fb[k])
        points = np.zeros(shape)
        for (x, y), flux, col, ext in zip(clump_xy + star_xy, np.r_[clump_flux, star_flux],
                                          clump_col + star_col, extent, strict=True):
            f_k = flux * colour_factors(*col)[k]
            if ext * fwhm > RESOLVED_MIN_PIX:
                light = light + f_k * gaussian_spot(xx, yy, x, y, ext * fwhm)
            else:
                # point source: the PSF itself, evaluated at the sub-pixel position
                points += f_k * _moffat(xx - x, yy - y, band_fwhm[k], beta, norm=False)
        planes[k] = fftconvolve(light, psf, mode="same") + points
    counts = rng.poisson(np.clip(planes + sky, 0, None)).astype(np.float64)
    planes = (counts - sky).astype(np.float32)

    xy = np.array(clump_xy + star_xy, dtype=np.float64).reshape(-1, 2)
    boxes = truth_boxes(xy[:, 0], xy[:, 1], fwhm * np.sqrt(1.0 + extent**2), shape)
    n_c = len(clump_xy)
    truth = Table()
    truth["x"] = xy[:, 0]
    truth["y"] = xy[:, 1]
    for j, name in enumerate(("x_min", "y_min", "x_max", "y_max")):
        truth[name] = boxes[:, j].astype(np.float64)
    for name in ("x", "y", "x_min", "y_min", "x_max", "y_max"):
        truth[name].unit = "pix"
    truth["class"] = np.array(["clump"] * n_c + ["odd"] * len(star_xy), dtype="U5")
    truth["class_id"] = np.array([1] * n_c + [2] * len(star_xy), dtype=np.int64)
    truth["flux_ratio"] = np.r_[clump_flux, star_flux] / host_total
    truth["flux_r"] = np.r_[clump_flux, star_flux]
    truth["size_fwhm"] = extent
    truth["size_fwhm"].description = "intrinsic FWHM / r-band PSF FWHM (0: a point)"
    truth["g_r"] = np.array([c_[0] for c_ in clump_col + star_col], dtype=np.float64)
    truth["r_i"] = np.array([c_[1] for c_ in clump_col + star_col], dtype=np.float64)
    truth["g_r"].unit = truth["r_i"].unit = "mag"
    truth.meta.update(psf_fwhm_pix=fwhm, moffat_beta=float(beta), host_flux_r=float(host_total),
                      sky=float(sky), r_eff=float(r_eff), x0=float(x0), y0=float(y0),
                      pixel_scale_arcsec=float(scale),
                      host="smooth" if structure is None else "structured")
    if structure is not None:
        truth.meta["structure"] = structure.meta
    image = image_from_planes(planes, psf_fwhm_pix=fwhm)
    image.meta["synthetic"] = True
    return image, truth


def synth_galaxies(n: int, seed: int = 0, size: int = 200, host: str = "smooth"
                   ) -> Iterator[tuple[GalaxyImage, Table]]:
    """Yield ``n`` synthetic galaxies ``(image, truth)``; galaxy ``k`` depends only on
    ``(seed, k)``, so a benchmark seed never overlaps a training seed's images.  ``host``
    as in :func:`synth_galaxy`: galaxy k has the same clumps whatever the host."""
    for k in range(int(n)):
        rng = np.random.default_rng([int(seed), k, 0x6A1A])
        yield synth_galaxy(rng, size=size, host=host)
