"""A :class:`~glue_ssclump.core.ppv_cube.PPVCube` from a numpy array and its header.

:func:`cube_from_array` is where a cube's content is normalised (see
:mod:`glue_ssclump.core.cube` for the list): the Stokes axis dropped, the spectral axis
converted to km/s through spectral-cube, the brightness converted to K when it can be,
infinite voxels blanked.  Header and WCS checks are in
:mod:`~glue_ssclump.core.fits_header` and :mod:`~glue_ssclump.core.cube_wcs`.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import wcs_to_celestial_frame

from .cube_wcs import _check_axes, _check_world, _drop_stokes, _parse_wcs
from .fits_header import _checked_header, _reason
from .ppv_cube import KMS, CubeError, PPVCube

__all__ = ["cube_from_array"]

log = logging.getLogger(__name__)

#: spectral CTYPE prefix -> (velocity convention for spectral-cube, resulting CTYPE).
_VELOCITY_TYPES = {
    "VRAD": ("radio", "VRAD"),
    "VOPT": ("optical", "VOPT"),
    "VELO": ("relativistic", "VELO"),
    "FREQ": ("radio", "VRAD"),
    "WAVE": ("optical", "VOPT"),
    "AWAV": ("optical", "VOPT"),
}


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

