"""Clump photometry as in Popp et al., appendix E (photutils apertures).

Clump flux: the sum in a circle of radius 1.125 PSF FWHM minus the median of an annulus
of 3-5 FWHM times the circle's area, with the other candidates and everything outside
the host masked in the annulus (figure E2), times the paper's aperture correction 1.03.
Host flux: the sum of the plane over the host's segment (clumps included).  The ratio
is measured in the r band (the paper uses u, which SDSS gri cut-outs lack).
"""

from __future__ import annotations

import numpy as np

__all__ = ["aperture_fluxes", "flux_ratios", "APERTURE_FWHM", "ANNULUS_FWHM",
           "APERTURE_CORRECTION"]

APERTURE_FWHM = 1.125
ANNULUS_FWHM = (3.0, 5.0)
APERTURE_CORRECTION = 1.03


def aperture_fluxes(plane: np.ndarray, x: np.ndarray, y: np.ndarray, fwhm: float,
                    host: np.ndarray | None = None) -> np.ndarray:
    """Background-subtracted aperture fluxes of point sources at ``(x, y)``.

    Parameters
    ----------
    plane : ndarray
        ``(ny, nx)`` linear image.
    x, y : ndarray
        Source centroids (numpy column / row).
    fwhm : float
        PSF FWHM in pixels.
    host : ndarray of bool, optional
        Host-galaxy mask; annulus pixels outside it are not used for the background
        (unless that leaves none).

    Returns
    -------
    ndarray
        Fluxes in the plane's units (NaN for no source).
    """
    from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture

    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    y = np.atleast_1d(np.asarray(y, dtype=np.float64))
    if x.size == 0:
        return np.zeros(0)
    plane = np.nan_to_num(np.asarray(plane, dtype=np.float64))
    r_ap = APERTURE_FWHM * fwhm
    ny, nx = plane.shape
    # every candidate's aperture is masked in the annuli; a source's own aperture lies
    # inside its annulus' hole, so one union mask serves all of them
    apertures = CircularAperture(np.c_[x, y], r=r_ap)
    others = np.zeros((ny, nx), dtype=bool)
    h = int(np.ceil(r_ap)) + 1
    for xk, yk in zip(x, y, strict=True):
        x0, x1 = max(int(xk) - h, 0), min(int(xk) + h + 1, nx)
        y0, y1 = max(int(yk) - h, 0), min(int(yk) + h + 1, ny)
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        others[y0:y1, x0:x1] |= np.hypot(xx - xk, yy - yk) <= r_ap
    mask = others | ~host if host is not None else others
    annuli = CircularAnnulus(np.c_[x, y], ANNULUS_FWHM[0] * fwhm, ANNULUS_FWHM[1] * fwhm)
    sums = np.atleast_1d(ApertureStats(plane, apertures).sum)
    medians = np.atleast_1d(ApertureStats(plane, annuli, mask=mask).median).astype(float)
    if host is not None and not np.isfinite(medians).all():
        # annulus wholly outside the host: fall back to masking the sources only
        fallback = np.atleast_1d(ApertureStats(plane, annuli, mask=others).median)
        medians = np.where(np.isfinite(medians), medians, fallback)
    medians = np.where(np.isfinite(medians), medians, 0.0)
    out = (np.asarray(sums, dtype=np.float64) - medians * apertures.area) * APERTURE_CORRECTION
    return out


def flux_ratios(plane: np.ndarray, x: np.ndarray, y: np.ndarray, fwhm: float,
                host: np.ndarray) -> np.ndarray:
    """Clump-to-host flux ratios: :func:`aperture_fluxes` over the host segment's sum."""
    host_flux = float(np.nansum(np.asarray(plane, dtype=np.float64)[host]))
    fluxes = aperture_fluxes(plane, x, y, fwhm, host)
    if not host_flux > 0:
        return np.full(fluxes.shape, np.nan)
    return fluxes / host_flux
