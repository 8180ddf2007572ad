"""What the verification figure needs to know about a cube's axes.

Pure numpy / astropy: the world axes of a cube (WCS or pixels), the velocity of every
channel and the short names of the celestial axes, shared by both drawing methods.
"""

from __future__ import annotations

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.wcs import WCS

__all__ = ["KMS", "CubeGeometry", "cube_geometry", "interp_velocity"]

KMS = u.km / u.s
_CELESTIAL_NAMES = {"RA": "RA", "DEC": "Dec", "GLON": "l", "GLAT": "b", "ELON": "λ",
                    "ELAT": "β", "SLON": "SGL", "SLAT": "SGB"}


@dataclass
class CubeGeometry:
    """What the figure needs to know about a cube's axes.

    Attributes
    ----------
    wcs : astropy.wcs.WCS or None
        3-axis WCS in FITS order (x, y, spectral); ``None`` draws pixel axes.
    shape : tuple of int
        ``(nv, ny, nx)``.
    velocity : ndarray
        Velocity (km/s) of every channel, or the channel index if unknown.
    velocity_unit : str
        ``'km/s'`` or ``'channel'``.
    lon_name, lat_name : str
        Short names of the celestial axes (``'RA'`` / ``'Dec'``, ``'l'`` / ``'b'``).
    intensity_unit : str
        Unit of the cube values (``'K'``).
    """

    wcs: WCS | None
    shape: tuple[int, int, int]
    velocity: np.ndarray
    velocity_unit: str
    lon_name: str
    lat_name: str
    intensity_unit: str

    @property
    def channel_width(self) -> float:
        """Median absolute channel spacing in velocity units (1 if a single channel)."""
        if self.velocity.size < 2:
            return 1.0
        return float(np.median(np.abs(np.diff(self.velocity))))


def cube_geometry(coords: object, shape: tuple[int, int, int],
                  intensity_unit: str = "K") -> CubeGeometry:
    """Axes description of a cube from its glue ``coords`` (an astropy WCS or ``None``).

    Parameters
    ----------
    coords : object
        The cube dataset's ``coords``; only a 3-axis celestial + spectral
        :class:`astropy.wcs.WCS` gives world axes.
    shape : tuple of int
        ``(nv, ny, nx)``.
    intensity_unit : str
        Unit of the values.

    Returns
    -------
    CubeGeometry
    """
    nz = shape[0]
    channels = np.arange(nz, dtype=float)
    if (isinstance(coords, WCS) and coords.naxis == 3 and coords.has_celestial
            and coords.wcs.spec >= 0):
        w = coords.wcs
        spec = coords.sub([w.spec + 1])
        values = np.asarray(spec.pixel_to_world_values(channels), dtype=float)
        try:
            velocity = (values * u.Unit(spec.wcs.cunit[0])).to_value(KMS)
            vunit = "km/s"
        except (u.UnitsError, ValueError):
            velocity, vunit = channels, "channel"
        lon = _CELESTIAL_NAMES.get(w.ctype[w.lng][:4].rstrip("-"), "lon")
        lat = _CELESTIAL_NAMES.get(w.ctype[w.lat][:4].rstrip("-"), "lat")
        return CubeGeometry(coords, tuple(shape), velocity, vunit, lon, lat,  # type: ignore[arg-type]
                            intensity_unit)
    return CubeGeometry(None, tuple(shape), channels, "channel", "x", "y",  # type: ignore[arg-type]
                        intensity_unit)



def interp_velocity(velocity: np.ndarray, z: float) -> float:
    """Velocity at a fractional channel (linear, extrapolated at the ends).

    Parameters
    ----------
    velocity : ndarray
        Velocity of every channel.
    z : float
        Fractional channel index.

    Returns
    -------
    float
    """
    n = velocity.size
    if n == 1:
        return float(velocity[0])
    i = int(np.clip(np.floor(z), 0, n - 2))
    return float(velocity[i] + (z - i) * (velocity[i + 1] - velocity[i]))
