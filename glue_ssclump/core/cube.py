"""PPV cube input: FITS file or HDU -> :class:`PPVCube` (float32 ``(v, y, x)`` in K).

Everything downstream (detectors, catalogue, samples) works on the numpy array of a
:class:`PPVCube` and its 3-axis WCS. :func:`read_cube` reads through spectral-cube and
normalises what real survey cubes look like:

- a degenerate 4th (Stokes) axis is dropped; more than one Stokes plane is an error;
- the spectral axis is converted to km/s: VELO / VRAD / VOPT keep their convention,
  FREQ (with RESTFRQ / RESTFREQ) becomes radio velocity (VRAD), WAVE / AWAV (with
  RESTWAV) becomes optical velocity (VOPT);
- no BUNIT: the values are taken to be K (with one log warning);
- Jy/beam with a beam (BMAJ/BMIN) is converted to K; without a beam, or when the
  conversion fails, the data stay in Jy/beam and :attr:`PPVCube.notes` says so;
- NaN blanks are kept as NaN.

Problems that make a cube unusable raise :class:`CubeError` with a message that names
the problem and the fix.

Note on units of :attr:`PPVCube.wcs`: astropy / wcslib always normalise spectral
units to SI internally, so ``cube.wcs.pixel_to_world_values`` returns m/s for the
spectral axis even though the header says km/s. Use :meth:`PPVCube.pixel_to_world` or
:attr:`PPVCube.velocity`, which return km/s.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales, wcs_to_celestial_frame

from .errors import SSClumpError

log = logging.getLogger(__name__)

KMS = u.km / u.s

#: spectral CTYPE prefix -> (velocity convention for spectral-cube, resulting CTYPE).
_VELOCITY_TYPES = {
    "VRAD": ("radio", "VRAD"),
    "VOPT": ("optical", "VOPT"),
    "VELO": ("relativistic", "VELO"),
    "FREQ": ("radio", "VRAD"),
    "WAVE": ("optical", "VOPT"),
    "AWAV": ("optical", "VOPT"),
}

_CELESTIAL_PREFIXES = ("RA", "DEC", "GLON", "GLAT", "ELON", "ELAT", "SLON", "SLAT")


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

        ``data`` must have the cube's shape (e.g. an int32 label mask); integer data
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
    """A copy of a cube's header for an integer label mask on the same grid.

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


# -- reading ------------------------------------------------------------------------


def read_cube(path_or_hdu: Any) -> PPVCube:
    """Read a PPV cube from a FITS file, an HDU or an HDUList.

    Parameters
    ----------
    path_or_hdu : str, os.PathLike, HDUList, PrimaryHDU or ImageHDU
        A file path or an in-memory HDU. For files and HDULists the first image HDU
        with 3 or more data axes is used (a cube in an extension, after a 2D image or
        compressed, is found).

    Returns
    -------
    PPVCube

    Raises
    ------
    CubeError
        If the input is not a usable PPV cube (missing, empty, truncated or damaged file,
        a header whose sizes, scaling or WCS keywords are wrong, no cube in it); the
        message says how to fix it. No other exception type escapes.
    """
    source: str | None = None
    if isinstance(path_or_hdu, (str, os.PathLike)):
        source = os.fspath(path_or_hdu)
        data, header = _read_file(source)
    elif isinstance(path_or_hdu, fits.HDUList):
        data, header = _guarded(lambda: _pick_hdu(path_or_hdu, "HDUList"), "the HDUList")
    elif isinstance(path_or_hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
        data, header = _guarded(lambda: _hdu_data(path_or_hdu, "the HDU"), "the HDU")
        if data is None:
            raise CubeError("the HDU has no data; pass the HDU that holds the cube")
    else:
        raise CubeError(
            f"cannot read a cube from {type(path_or_hdu).__name__}; give a FITS path or "
            "an astropy.io.fits HDU (use cube_from_array for a numpy array + header)"
        )
    return cube_from_array(data, header, source=source)


def _read_file(source: str) -> tuple[np.ndarray, fits.Header]:
    """Data and header of the first cube in a FITS file; every failure is a CubeError."""
    if not os.path.exists(source):
        raise CubeError(f"{source}: no such file; check the path")
    if os.path.isdir(source):
        raise CubeError(f"{source} is a folder, not a FITS file; give the path of the cube's "
                        ".fits file")
    if not os.path.isfile(source):  # a pipe or device: reading could block forever
        raise CubeError(f"{source} is not a regular file (a pipe or device); give the path "
                        "of the cube's .fits file")
    size = os.path.getsize(source)
    if size == 0:
        raise CubeError(f"{source} is empty (0 bytes): the download or copy failed; copy the "
                        "file again")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fits.open(source, memmap=False) as hdul:
                return _pick_hdu(hdul, source, size)
    except CubeError:
        raise
    except PermissionError:
        raise CubeError(f"{source} cannot be read (permission denied); check the file's "
                        "permissions (chmod u+r) or copy it somewhere readable") from None
    except MemoryError:
        raise CubeError(f"{source}: the cube does not fit in memory; cut out a smaller "
                        "region (e.g. with spectral-cube's subcube) and read that") from None
    except Exception as exc:  # noqa: BLE001 - astropy raises many kinds for broken files
        reason = _reason(exc)
        texts = [str(w.message) for w in caught]
        if any("truncated" in t for t in texts) or "cannot reshape" in reason:
            raise CubeError(
                f"{source} is truncated ({size} bytes, shorter than its header says): the "
                "download or copy was cut short; copy the file again") from None
        raise CubeError(
            f"{source} is not a readable FITS file ({reason}); give a FITS cube (.fits), or "
            "copy the file again if it was damaged") from None


def _guarded(fn: Any, what: str) -> Any:
    """Run ``fn`` (reading an in-memory HDU); astropy's errors become a CubeError."""
    try:
        return fn()
    except CubeError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged in-memory HDU
        raise CubeError(f"{what} cannot be read ({_reason(exc)}); check its header "
                        "(BITPIX, NAXISn, BSCALE/BZERO)") from None


def _reason(exc: BaseException) -> str:
    """``Type: first line`` of an exception, short enough for a one-line message."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def _pick_hdu(hdul: fits.HDUList, name: str, size: int | None = None
              ) -> tuple[np.ndarray, fits.Header]:
    """The first image HDU with 3 or more axes (else the first with 2, for the message).

    HDUs are loaded one at a time, so a damaged HDU after the cube does not matter.
    """
    fallback = None
    i = 0
    while True:
        try:
            hdu = hdul[i]
        except IndexError:
            break
        except Exception as exc:  # noqa: BLE001 - the bytes after the last HDU are junk
            if fallback is not None:
                break
            raise CubeError(
                f"{name}: HDU {i} cannot be read ({_reason(exc)}); the file is damaged, or a "
                "header's BITPIX / NAXISn disagree with the data that follow - copy the file "
                "again or fix those keywords") from None
        i += 1
        if not getattr(hdu, "is_image", False):
            continue
        header = _checked_header(hdu.header, f"{name}: ")
        naxis = _header_shape(header)
        if len(naxis) < 2 or 0 in naxis:
            continue
        if size is not None and not isinstance(hdu, fits.CompImageHDU):
            _check_size(hdu, header, naxis, size, name)
        if len(naxis) >= 3:
            return _hdu_data(hdu, name)
        if fallback is None:
            fallback = hdu
    if fallback is not None:
        return _hdu_data(fallback, name)
    raise CubeError(f"{name} holds no image data; give a FITS file with a PPV cube")


def _header_shape(header: fits.Header) -> tuple[int, ...]:
    """``NAXIS1..NAXISn`` as ints (FITS order); a CubeError when they are not integers."""
    values = [header.get("NAXIS", 0)] + [header.get(f"NAXIS{i}") for i in
                                         range(1, _int_or_zero(header.get("NAXIS", 0)) + 1)]
    for key, value in zip(["NAXIS"] + [f"NAXIS{i}" for i in range(1, len(values))], values,
                          strict=True):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CubeError(f"{key} = {value!r} is not a non-negative integer; fix the header "
                            "(NAXIS = number of axes, NAXISn = length of axis n)")
    return tuple(values[1:])


def _int_or_zero(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _check_size(hdu: Any, header: fits.Header, naxis: tuple[int, ...], size: int,
                name: str) -> None:
    """Refuse, before reading, data that run past the end of the file."""
    bitpix = header.get("BITPIX")
    if bitpix not in (8, 16, 32, 64, -32, -64):
        raise CubeError(f"{name}: BITPIX = {bitpix!r} is not a FITS data type; fix BITPIX "
                        "(8, 16, 32, 64, -32 or -64)")
    nbytes = abs(bitpix) // 8 * int(np.prod(naxis, dtype=np.int64))
    start = int(hdu.fileinfo()["datLoc"])
    if start + nbytes > size:
        raise CubeError(
            f"{name} is truncated: its header describes {start + nbytes} bytes (BITPIX "
            f"{bitpix}, axes {'x'.join(map(str, naxis))}) but the file has {size}; the "
            "download or copy was cut short - copy the file again (or fix NAXISn / BITPIX)")
    # More bytes than the header describes, and not a next HDU: BITPIX / NAXISn are wrong.
    end = start + nbytes + (-nbytes % 2880)
    if size > end and os.path.isfile(name):
        with open(name, "rb") as fh:
            fh.seek(end)
            rest = fh.read(2880)
        if not rest.startswith(b"XTENSION") and rest.strip(b"\0 "):
            raise CubeError(
                f"{name}: the header describes {nbytes} bytes of data (BITPIX {bitpix}, axes "
                f"{'x'.join(map(str, naxis))}) but more data follow; fix BITPIX / NAXISn so "
                "they match the data (or copy the file again if it was damaged)")


_NUMBER_KEYS = re.compile(
    r"^(CRVAL\d|CDELT\d|CRPIX\d|CROTA\d|PC\d_\d|CD\d_\d|RESTFRQ|RESTFREQ|RESTWAV|"
    r"LONPOLE|LATPOLE|BSCALE|BZERO)$")


def _checked_header(header: fits.Header, where: str) -> fits.Header:
    """A copy of ``header`` in which every card parses and the numeric keys are numbers."""
    for card in header.cards:
        try:
            value = card.value
        except Exception:  # noqa: BLE001 - astropy's VerifyError and kin
            raise CubeError(
                f"{where}header card {card.keyword or '?'} cannot be parsed "
                f"({card.image.strip()[:60]!r}); fix or delete that card") from None
        if _NUMBER_KEYS.match(card.keyword) and (
                isinstance(value, bool) or not isinstance(value, (int, float))
                or not np.isfinite(value)):
            what = ("it scales the data values" if card.keyword in ("BSCALE", "BZERO")
                    else "the world coordinates depend on it")
            raise CubeError(f"{where}{card.keyword} = {value!r} is not a finite number; fix or "
                            f"remove that keyword ({what})")
    if header.get("BSCALE", 1) == 0:
        raise CubeError(f"{where}BSCALE = 0 would make every value equal to BZERO; fix BSCALE "
                        "(1 if the data are not scaled)")
    blank = header.get("BLANK")
    if blank is not None and (isinstance(blank, bool) or not isinstance(blank, int)):
        raise CubeError(f"{where}BLANK = {blank!r} is not an integer; fix or remove BLANK "
                        "(the stored value of blank voxels in integer data)")
    try:
        return header.copy()
    except Exception as exc:  # noqa: BLE001
        raise CubeError(f"{where}the header cannot be copied ({_reason(exc)}); fix the "
                        "header") from None


def _hdu_data(hdu: Any, name: str) -> tuple[np.ndarray | None, fits.Header]:
    header = _checked_header(hdu.header, f"{name}: ")
    data = hdu.data
    return (None if data is None else np.array(data)), header


def cube_from_array(
    data: np.ndarray, header: fits.Header | dict[str, Any], source: str | None = None
) -> PPVCube:
    """Build a :class:`PPVCube` from a numpy array (FITS-style, reversed axes) and header.

    Parameters
    ----------
    data : ndarray
        3D ``(v, y, x)`` or 4D ``(stokes, v, y, x)`` array, as ``astropy.io.fits`` gives it.
    header : Header or dict
        FITS header with the WCS of ``data``.
    source : str, optional
        Where the data came from (kept in :attr:`PPVCube.source`).

    Returns
    -------
    PPVCube
    """
    where = f"{source}: " if source else ""
    try:
        header = fits.Header(header) if not isinstance(header, fits.Header) else header
    except Exception as exc:  # noqa: BLE001 - a dict astropy cannot turn into cards
        raise CubeError(f"{where}the header cannot be used ({_reason(exc)}); give an "
                        "astropy.io.fits.Header or a dict of FITS keywords") from None
    header = _checked_header(header, where)
    data = np.asarray(data)
    notes: list[str] = []

    if data.ndim == 2:
        raise CubeError(
            f"{where}this is a 2D image (shape {data.shape}), not a PPV cube; give a 3D "
            "position-position-velocity cube (or a 4D cube with one Stokes plane)"
        )
    if data.ndim not in (3, 4):
        raise CubeError(
            f"{where}data have {data.ndim} axes (shape {data.shape}); give a 3D PPV cube "
            "(or a 4D cube with one Stokes plane)"
        )
    ctypes = [str(header.get(f"CTYPE{i}", "")).strip() for i in range(1, data.ndim + 1)]
    if not any(ctypes):
        raise CubeError(
            f"{where}the header has no WCS (no CTYPE1..CTYPE{data.ndim}); add the celestial "
            "and spectral axes (CTYPEn, CRVALn, CRPIXn, CDELTn, CUNITn) to the header"
        )
    wcs = _parse_wcs(header, data.ndim, where)

    if data.ndim == 4:
        data, wcs = _drop_stokes(data, wcs, ctypes, where)
        notes.append("dropped the degenerate 4th (Stokes) axis")

    _check_axes(wcs, where)
    _check_world(wcs, data.shape, where)
    if not np.issubdtype(data.dtype, np.number) or np.issubdtype(data.dtype, np.complexfloating):
        raise CubeError(f"{where}the data are of type {data.dtype}, not real numbers; give a "
                        "cube of integer or floating-point values")
    n_inf = int(np.isinf(data).sum()) if data.dtype.kind == "f" else 0
    if n_inf:
        # Infinite voxels would poison the rms, the peaks and the sample scaling: blank them.
        data = np.where(np.isinf(data), np.nan, data)
        notes.append(f"{n_inf} infinite voxel(s) treated as blank (NaN)")
        log.warning("%s%s", where, notes[-1])
    if not np.isfinite(data).any():
        raise CubeError(
            f"{where}every voxel is NaN/blank; check the file (wrong HDU, or BLANK/"
            "scaling keywords) and give a cube with data"
        )

    ctype3 = wcs.wcs.ctype[2].upper()
    prefix = ctype3[:4]
    if prefix not in _VELOCITY_TYPES:
        raise CubeError(
            f"{where}spectral axis type {ctype3!r} is not supported; give a cube whose "
            "third axis is VELO, VRAD, VOPT or FREQ (with RESTFRQ)"
        )
    convention, spectral_type = _VELOCITY_TYPES[prefix]
    if prefix in ("FREQ", "WAVE", "AWAV") and not (wcs.wcs.restfrq or wcs.wcs.restwav):
        what = "frequency" if prefix == "FREQ" else "wavelength"
        key = "RESTFRQ" if prefix == "FREQ" else "RESTWAV"
        raise CubeError(
            f"{where}the spectral axis is {prefix} but the header has no rest {what}, "
            f"so velocities cannot be computed; add {key} to the header (e.g. "
            "header['RESTFRQ'] = 110.2013543e9 for 13CO(1-0), in Hz)"
        )

    bunit_raw = str(header.get("BUNIT", "")).strip()
    unit, unit_note = _parse_bunit(bunit_raw, where)
    if unit_note:
        notes.append(unit_note)

    try:
        return _build(data, wcs, header, unit, convention, prefix, spectral_type, source,
                      notes, where)
    except CubeError:
        raise
    except Exception as exc:  # noqa: BLE001 - a header wcslib/spectral-cube cannot use
        raise CubeError(
            f"{where}the cube cannot be set up from its header ({_reason(exc)}); check the WCS "
            "keywords (CTYPEn, CUNITn, CRVALn, CDELTn, CRPIXn, PC/CD, RADESYS, RESTFRQ)"
        ) from None


def _build(data: np.ndarray, wcs: WCS, header: fits.Header, unit: u.UnitBase,
           convention: str, prefix: str, spectral_type: str, source: str | None,
           notes: list[str], where: str) -> PPVCube:
    """The spectral-cube part of :func:`cube_from_array` (inputs already checked)."""
    cube = _spectral_cube(data, wcs, header, unit)
    cube = cube.with_spectral_unit(KMS, velocity_convention=convention)
    if prefix not in ("VRAD", "VOPT", "VELO"):
        notes.append(f"spectral axis {prefix} converted to {spectral_type} ({convention}) km/s")

    out_unit = "K"
    if unit.is_equivalent(u.K):
        values = cube.unmasked_data[:].to_value(u.K) if unit != u.K else None
    elif unit.is_equivalent(u.Jy / u.beam) or unit.is_equivalent(u.Jy):
        values, out_unit, note = _jy_to_k(cube, unit, where)
        notes.append(note)
    else:
        values = None
        out_unit = unit.to_string()
        note = f"data unit {out_unit!r} is not a brightness temperature; values kept as they are"
        log.warning("%s%s", where, note)
        notes.append(note)

    if values is None:
        values = np.asarray(cube.unmasked_data[:].value)
    values = np.ascontiguousarray(values, dtype=np.float32)

    wcs3 = cube.wcs
    hdr3 = _clean_header(cube.header, header, out_unit)
    try:
        frame = wcs_to_celestial_frame(wcs3.celestial).name
    except ValueError as exc:
        raise CubeError(
            f"{where}the celestial frame cannot be told from the header ({_reason(exc)}); fix "
            "RADESYS (ICRS, FK5, ...) and EQUINOX (e.g. 2000.0), or use GLON/GLAT axes"
        ) from None
    return PPVCube(
        data=values,
        wcs=wcs3,
        header=hdr3,
        frame=frame,
        spectral_type=spectral_type,
        source=source,
        unit=out_unit,
        notes=notes,
    )


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


def _parse_bunit(bunit: str, where: str) -> tuple[u.UnitBase, str]:
    if not bunit:
        note = "no BUNIT in the header: values assumed to be K"
        log.warning("%s%s", where, note)
        return u.K, note
    text = bunit.replace("JY/BEAM", "Jy/beam").replace("JY", "Jy")
    if text.upper() in ("K", "K (TMB)", "K(TMB)", "KELVIN", "K (TA*)", "K(TA*)"):
        return u.K, ""
    try:
        return u.Unit(text, parse_strict="raise"), ""
    except ValueError:
        note = f"BUNIT {bunit!r} not understood: values assumed to be K"
        log.warning("%s%s", where, note)
        return u.K, note


def _spectral_cube(data: np.ndarray, wcs: WCS, header: fits.Header, unit: u.UnitBase):
    from spectral_cube import SpectralCube

    beam = None
    if "BMAJ" in header and "BMIN" in header:
        try:
            from radio_beam import Beam

            beam = Beam.from_fits_header(header)
        except Exception as exc:  # noqa: BLE001 - a bad beam only blocks Jy->K
            log.warning("beam keywords ignored: %s", exc)
    meta = {"BUNIT": unit.to_string()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # spectral-cube warns about beams / units we handle
        return SpectralCube(
            data=np.asarray(data) * unit, wcs=wcs, meta=meta, beam=beam,
            allow_huge_operations=True,
        )


def _jy_to_k(cube: Any, unit: u.UnitBase, where: str) -> tuple[np.ndarray | None, str, str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converted = cube.to(u.K)
            values = np.asarray(converted.unmasked_data[:].value)
        return values, "K", f"converted {unit.to_string()} to K with the beam"
    except Exception as exc:  # noqa: BLE001 - keep the data, say why
        note = (
            f"data are in {unit.to_string()} and could not be converted to K ({exc}); "
            "values kept in their unit: thresholds in K will not mean K - add BMAJ/BMIN "
            "(deg) and a rest frequency to the header to convert"
        )
        log.warning("%s%s", where, note)
        return None, unit.to_string(), note


_KEEP_KEYS = ("OBJECT", "TELESCOP", "INSTRUME", "LINE", "DATE-OBS", "EQUINOX", "RADESYS",
              "SPECSYS", "RESTFRQ", "RESTFREQ", "VELREF", "BMAJ", "BMIN", "BPA")


def _clean_header(cube_header: fits.Header, original: fits.Header, unit: str) -> fits.Header:
    """3D header from spectral-cube's, with a correct BUNIT and no stale comments."""
    header = fits.Header()
    header["NAXIS"] = 3
    for i in (1, 2, 3):
        header[f"NAXIS{i}"] = cube_header[f"NAXIS{i}"]
    for card in cube_header.cards:
        if card.keyword in ("COMMENT", "HISTORY", "", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3"):
            continue
        header[card.keyword] = card.value
    for key in _KEEP_KEYS:
        if key in original and key not in header:
            header[key] = original[key]
    header["BUNIT"] = unit
    return header


# -- noise --------------------------------------------------------------------------

_GAUSS_MAD = 0.6744897501960817  # median |x| of a unit normal


def estimate_rms(data: np.ndarray) -> float:
    """Robust noise rms (K) of a cube in which emission may fill every channel.

    Method: line emission is positive, so the values below zero are (almost) pure
    noise. Mirroring them about zero gives a symmetric distribution whose rms is the
    noise rms: ``sqrt(mean(x**2 for x < 0))``. Negative outliers (absorption, bad
    channels) are first cut at 6 times a median-based estimate of the same half.
    Weak emission on top of noise pushes some noise voxels above zero, so the value
    is, if anything, slightly low (L1448 13CO: 0.122 K).

    Fallback, when fewer than 1% of the finite values (or 100) are negative (e.g. a
    cube with a positive baseline offset): the median absolute difference between
    adjacent channels, ``1.4826 * median(|d[k+1] - d[k]|) / sqrt(2)``, which removes
    emission that is smooth over a channel.

    Parameters
    ----------
    data : ndarray
        The cube (any shape); NaN ignored.

    Returns
    -------
    float
        The rms in the data's unit.

    Raises
    ------
    CubeError
        If the data have no finite values or the estimate is zero.
    """
    arr = np.asarray(data)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        raise CubeError("cannot estimate the noise: no finite values; give the rms by hand")
    neg = finite[finite < 0].astype(np.float64)
    rms = 0.0
    if neg.size >= max(100, 0.01 * finite.size):
        s0 = np.median(-neg) / _GAUSS_MAD
        neg = neg[neg > -6.0 * s0]
        rms = float(np.sqrt(np.mean(neg * neg)))
    elif arr.ndim >= 1 and arr.shape[0] > 1:
        diff = np.diff(np.asarray(arr, dtype=np.float64), axis=0)
        diff = diff[np.isfinite(diff)]
        if diff.size:
            rms = float(1.4826 * np.median(np.abs(diff)) / np.sqrt(2.0))
    if not np.isfinite(rms) or rms <= 0:
        raise CubeError(
            "cannot estimate the noise (constant or noise-free data); give the rms by hand"
        )
    return rms
