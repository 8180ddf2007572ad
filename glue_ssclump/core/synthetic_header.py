"""The FITS header of a synthetic cube: Galactic CAR WCS, VRAD, BUNIT K."""

from __future__ import annotations

from collections.abc import Sequence

from astropy.io import fits

#: 13CO(1-0) rest frequency, Hz.
RESTFRQ_13CO = 110.2013543e9
#: Pixel size, arcsec, and channel width, km/s (MWISP-like).
PIXEL_ARCSEC = 30.0
CHANNEL_KMS = 0.166
#: Velocity units a header can be written in, and their size in km/s.
_VELOCITY_SCALE = {"km/s": 1.0, "m/s": 1000.0}


def synthetic_header(
    shape: Sequence[int],
    *,
    lon0: float = 30.0,
    lat0: float = 0.0,
    vel0: float = 10.0,
    pixel_arcsec: float = PIXEL_ARCSEC,
    channel_kms: float = CHANNEL_KMS,
    beam_fwhm: float = 2.0,
    velocity_unit: str = "km/s",
) -> fits.Header:
    """A 3D FITS header: GLON-CAR / GLAT-CAR, VRAD (LSRK), BUNIT K.

    Parameters
    ----------
    shape : (nv, ny, nx)
        The numpy shape of the cube.
    lon0, lat0 : float
        Galactic longitude and latitude of the cube centre, deg.
    vel0 : float
        Velocity of the centre channel, km/s.
    pixel_arcsec : float
        Pixel size, arcsec.
    channel_kms : float
        Channel width, km/s.
    beam_fwhm : float
        Beam FWHM in pixels (BMAJ = BMIN).
    velocity_unit : {'km/s', 'm/s'}
        Unit of the spectral axis in the header (``vel0`` and ``channel_kms`` stay in
        km/s).

    Returns
    -------
    astropy.io.fits.Header
    """
    nv, ny, nx = (int(n) for n in shape)
    vscale = _VELOCITY_SCALE[velocity_unit]
    pix = pixel_arcsec / 3600.0
    h = fits.Header()
    h["NAXIS"] = 3
    h["NAXIS1"], h["NAXIS2"], h["NAXIS3"] = nx, ny, nv
    h["CTYPE1"], h["CRVAL1"], h["CDELT1"], h["CRPIX1"], h["CUNIT1"] = (
        "GLON-CAR", float(lon0), -pix, (nx + 1) / 2.0, "deg")
    h["CTYPE2"], h["CRVAL2"], h["CDELT2"], h["CRPIX2"], h["CUNIT2"] = (
        "GLAT-CAR", float(lat0), pix, (ny + 1) / 2.0, "deg")
    h["CTYPE3"], h["CRVAL3"], h["CDELT3"], h["CRPIX3"], h["CUNIT3"] = (
        "VRAD", float(vel0) * vscale, float(channel_kms) * vscale, (nv + 1) / 2.0,
        velocity_unit)
    h["SPECSYS"] = "LSRK"
    h["RESTFRQ"] = RESTFRQ_13CO
    h["BUNIT"] = "K"
    h["BMAJ"] = h["BMIN"] = beam_fwhm * pix
    h["BPA"] = 0.0
    h["OBJECT"] = "SYNTHETIC"
    return h
