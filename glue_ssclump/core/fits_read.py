"""Reading a PPV cube from a FITS file, an HDU or an HDUList (:func:`read_cube`).

This module finds the cube among the file's HDUs and turns every way a file can be
unreadable (missing, empty, a folder or a pipe, truncated, damaged, unreadable HDUs,
more or fewer bytes than the header describes) into a
:class:`~glue_ssclump.core.ppv_cube.CubeError`; what is done with the data and header
it finds is :func:`~glue_ssclump.core.cube_build.cube_from_array`.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
from astropy.io import fits

from .cube_build import cube_from_array
from .fits_header import _checked_header, _header_shape, _reason
from .ppv_cube import CubeError, PPVCube

__all__ = ["read_cube"]


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



def _hdu_data(hdu: Any, name: str) -> tuple[np.ndarray | None, fits.Header]:
    header = _checked_header(hdu.header, f"{name}: ")
    data = hdu.data
    return (None if data is None else np.array(data)), header
