"""Checks of a cube's WCS: two celestial axes, then a spectral one, mapping onto the sky.

wcslib accepts many headers that cannot describe a PPV cube (axes in another order,
no spectral axis, a singular or mixed PC / CD matrix, NaN world coordinates); each is
refused here with a :class:`~glue_ssclump.core.ppv_cube.CubeError` that names the
keywords to fix, so that the catalogue never gets NaN positions or zero sizes.
"""

from __future__ import annotations

import warnings

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from .fits_header import _reason
from .ppv_cube import CubeError

_CELESTIAL_PREFIXES = ("RA", "DEC", "GLON", "GLAT", "ELON", "ELAT", "SLON", "SLAT")


def _parse_wcs(header: fits.Header, naxis: int, where: str) -> WCS:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header, naxis=naxis)
    except Exception as exc:  # noqa: BLE001 - astropy raises many kinds here
        reason = " ".join(str(exc).split())
        raise CubeError(
            f"{where}the header's WCS cannot be parsed ({type(exc).__name__}: {reason}); fix the "
            "CTYPE/CUNIT/CRVAL keywords so the cube has two celestial axes and a spectral one"
        ) from None
    return wcs


def _drop_stokes(
    data: np.ndarray, wcs: WCS, ctypes: list[str], where: str
) -> tuple[np.ndarray, WCS]:
    """Remove the length-1 Stokes (or other degenerate) axis of a 4D cube."""
    nfits = [data.shape[::-1][i] for i in range(4)]  # FITS order lengths
    stokes = [i for i, c in enumerate(ctypes) if c.upper().startswith("STOKES")]
    if stokes:
        i = stokes[0]
        if nfits[i] != 1:
            raise CubeError(
                f"{where}the cube has {nfits[i]} Stokes planes (axis {i + 1}); pick one "
                "before reading, e.g. fits.PrimaryHDU(data[0], header) for Stokes I"
            )
    else:
        degenerate = [i for i in range(4) if nfits[i] == 1 and i >= 2]
        if not degenerate:
            raise CubeError(
                f"{where}4D data of shape {data.shape} without a length-1 Stokes axis; "
                "give a 3D PPV cube or a 4D cube whose 4th axis has one plane"
            )
        i = degenerate[-1]
    data = np.take(data, 0, axis=3 - i)
    return data, wcs.dropaxis(i)


def _check_axes(wcs: WCS, where: str) -> None:
    """Require FITS axes 1-2 celestial and axis 3 spectral."""
    w = wcs.wcs
    ctypes = list(w.ctype)
    spec = w.spec
    if spec < 0:
        celestialish = [c for c in ctypes if c.upper().split("-")[0] in _CELESTIAL_PREFIXES]
        raise CubeError(
            f"{where}no spectral axis among CTYPEs {ctypes}"
            + (" (three celestial-like axes)" if len(celestialish) == 3 else "")
            + "; the third FITS axis must be VELO, VRAD, VOPT or FREQ: fix CTYPE3 or "
            "give a position-position-velocity cube"
        )
    if spec != 2 or sorted((w.lng, w.lat)) != [0, 1]:
        raise CubeError(
            f"{where}axis order {ctypes} is not (lon, lat, spectral): the spectral axis is "
            f"FITS axis {spec + 1}, expected axis 3; reorder the cube, e.g. with "
            "spectral_cube.SpectralCube.read(path).hdu (which puts the spectral axis last "
            "in FITS order) or np.transpose plus a matching header"
        )


def _check_world(wcs: WCS, shape: tuple[int, ...], where: str) -> None:
    """Require finite world coordinates and a non-singular pixel -> world map.

    wcslib accepts NaN or huge CDELT / CRVAL values and singular PC / CD matrices that
    leave some columns independent; the catalogue would then get NaN positions or zero
    sizes, so such headers are refused here with the keywords to fix.
    """
    w = wcs.wcs
    pc = np.asarray(w.get_pc(), dtype=float)
    if np.any(pc[2, :2] != 0) or np.any(pc[:2, 2] != 0):
        raise CubeError(
            f"{where}the header's PC/CD matrix mixes the spectral axis with the sky axes "
            "(PC1_3, PC2_3, PC3_1 or PC3_2 not 0); regrid the cube so the spectral axis is "
            "independent of position")
    centre = np.array([(n - 1) / 2.0 for n in shape[::-1][:3]])
    pix = np.vstack([centre, centre + np.eye(3)])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            world = np.asarray(wcs.all_pix2world(pix, 0), dtype=float)
    except Exception as exc:  # noqa: BLE001 - wcslib's projection errors
        raise CubeError(
            f"{where}the header's WCS cannot map the cube's pixels to the sky ({_reason(exc)}); "
            "fix CRVALn, CDELTn, CRPIXn and the PC/CD matrix") from None
    if not np.isfinite(world).all():
        raise CubeError(
            f"{where}the header's WCS gives no finite world coordinates at the cube's centre; "
            "fix CRVALn, CDELTn, CRPIXn (and PC/CD) so the cube maps onto the sky")
    jac = world[1:] - world[0]
    lng = w.lng
    jac[:, lng] = (jac[:, lng] + 180.0) % 360.0 - 180.0  # longitude wraps at 360 deg
    sky = jac[:2, [w.lng, w.lat]]
    scale = float(np.abs(sky).max())
    if jac[2, w.spec] == 0 or scale == 0 or abs(np.linalg.det(sky)) <= 1e-9 * scale**2:
        raise CubeError(
            f"{where}the header's WCS is degenerate: neighbouring pixels or channels map to "
            "the same position or velocity (singular PC/CD matrix or zero CDELTn); fix the "
            "PC/CD matrix and CDELTn")

