"""The :class:`PPVCube` container and the error raised for unusable cube input.

A :class:`PPVCube` is what :func:`~glue_ssclump.core.cube.read_cube` and
:func:`~glue_ssclump.core.cube.cube_from_array` produce: the float32 ``(v, y, x)``
array, a 3-axis WCS whose spectral axis is a velocity, and a clean header for writing
masks on the same grid.

Note on units of :attr:`PPVCube.wcs`: astropy / wcslib always normalise spectral
units to SI internally, so ``cube.wcs.pixel_to_world_values`` returns m/s for the
spectral axis even though the header says km/s. Use :meth:`PPVCube.pixel_to_world` or
:attr:`PPVCube.velocity`, which return km/s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from .errors import SSClumpError

__all__ = ["KMS", "CubeError", "PPVCube", "mask_header"]

KMS = u.km / u.s


class CubeError(SSClumpError):
    """The input cannot be used as a PPV cube; the message names the problem and the fix."""


@dataclass
class PPVCube:
    """A position-position-velocity cube ready for detection.

    Attributes
    ----------
    data : ndarray
        float32, numpy order ``(v, y, x)``, in K (see :attr:`unit`), NaN = blank.
    wcs : astropy.wcs.WCS
        3 axes in FITS order ``(x, y, spectral)``; the spectral axis is a velocity
        (header in km/s; wcslib keeps it in m/s internally, see the module docstring).
    header : astropy.io.fits.Header
        A clean 3D header consistent with ``wcs`` (spectral axis in km/s); used when
        writing masks (:meth:`to_hdu`).
    frame : str
        Celestial frame name (``'galactic'``, ``'icrs'``, ``'fk5'``, ...).
    spectral_type : str
        CTYPE3 of the velocity axis: ``'VRAD'``, ``'VOPT'`` or ``'VELO'``.
    source : str or None
        The file the cube came from, if any.
    unit : str
        Unit of ``data``: ``'K'`` unless a Jy/beam cube could not be converted.
    notes : list of str
        What reading changed or assumed (assumed K, Stokes axis dropped, ...).
    """

    data: np.ndarray
    wcs: WCS
    header: fits.Header
    frame: str
    spectral_type: str
    source: str | None = None
    unit: str = "K"
    notes: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(nv, ny, nx)``."""
        return tuple(int(n) for n in self.data.shape)  # type: ignore[return-value]

    @property
    def velocity(self) -> np.ndarray:
        """Velocity of each channel centre in km/s (length ``nv``)."""
        z = np.arange(self.shape[0], dtype=float)
        return self._spectral_kms(z)

    @property
    def channel_width(self) -> float:
        """Absolute channel width in km/s (from the WCS at the cube centre)."""
        zc = (self.shape[0] - 1) / 2.0
        v0, v1 = self._spectral_kms(np.array([zc - 0.5, zc + 0.5]))
        return float(abs(v1 - v0))

    @property
    def pixel_scale(self) -> float:
        """Celestial pixel size in degrees (geometric mean of the two axes)."""
        scales = proj_plane_pixel_scales(self.wcs.celestial)
        return float(np.sqrt(abs(scales[0] * scales[1])))

    @property
    def lon_lat_names(self) -> tuple[str, str]:
        """``('GLON', 'GLAT')`` for Galactic cubes, ``('RA', 'DEC')`` otherwise."""
        if self.frame == "galactic":
            return ("GLON", "GLAT")
        if self.frame in ("supergalactic",):
            return ("SLON", "SLAT")
        if self.frame.startswith("geocentric") or self.frame.endswith("ecliptic"):
            return ("ELON", "ELAT")
        return ("RA", "DEC")

    def pixel_to_world(
        self, x: Any, y: Any, z: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """0-based pixel positions (FITS order x, y, z) -> (lon deg, lat deg, vel km/s)."""
        x, y, z = np.broadcast_arrays(
            np.asarray(x, dtype=float), np.asarray(y, dtype=float), np.asarray(z, dtype=float)
        )
        world = self.wcs.pixel_to_world_values(x, y, z)
        w = self.wcs.wcs
        lon = np.asarray(world[w.lng]) * u.Unit(w.cunit[w.lng]).to(u.deg)
        lat = np.asarray(world[w.lat]) * u.Unit(w.cunit[w.lat]).to(u.deg)
        vel = np.asarray(world[w.spec]) * u.Unit(w.cunit[w.spec]).to(KMS)
        return lon, lat, vel

    def world_to_pixel(
        self, lon: Any, lat: Any, vel_kms: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lon deg, lat deg, vel km/s) -> 0-based pixel positions (x, y, z), floats."""
        w = self.wcs.wcs
        world: list[Any] = [None, None, None]
        world[w.lng] = np.asarray(lon, dtype=float) * u.deg.to(w.cunit[w.lng])
        world[w.lat] = np.asarray(lat, dtype=float) * u.deg.to(w.cunit[w.lat])
        world[w.spec] = np.asarray(vel_kms, dtype=float) * KMS.to(w.cunit[w.spec])
        x, y, z = self.wcs.world_to_pixel_values(*world)
        return np.asarray(x), np.asarray(y), np.asarray(z)

    def to_hdu(self, data: np.ndarray | None = None) -> fits.PrimaryHDU:
        """A FITS HDU with this cube's header and ``data`` (default: the cube itself).

        ``data`` must have the cube's shape (e.g. an int32 mask); integer data
        get :func:`mask_header`.
        """
        arr = self.data if data is None else np.asarray(data)
        if arr.shape != self.data.shape:
            raise CubeError(
                f"array of shape {arr.shape} does not match the cube {self.data.shape}; "
                "pass an array with the cube's (v, y, x) shape"
            )
        header = (mask_header(self.header) if np.issubdtype(arr.dtype, np.integer)
                  else self.header.copy())
        return fits.PrimaryHDU(data=arr, header=header)

    def _spectral_kms(self, z: np.ndarray) -> np.ndarray:
        spec = self.wcs.spectral
        values = np.asarray(spec.pixel_to_world_values(z), dtype=float)
        return values * u.Unit(spec.wcs.cunit[0]).to(KMS)


def mask_header(header: fits.Header) -> fits.Header:
    """A copy of a cube's header for an integer mask on the same grid.

    The WCS is kept; the brightness unit, beam and scaling keywords (BUNIT, BMAJ, BMIN,
    BPA, BSCALE, BZERO, BLANK) do not describe clump ids and are removed.

    Parameters
    ----------
    header : astropy.io.fits.Header
        The cube's header.

    Returns
    -------
    astropy.io.fits.Header
    """
    out = header.copy()
    for key in ("BUNIT", "BMAJ", "BMIN", "BPA", "BSCALE", "BZERO", "BLANK"):
        out.remove(key, ignore_missing=True)
    return out
