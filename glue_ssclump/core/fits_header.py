"""Checks on FITS header keywords, before anything is computed from them.

Sizes (NAXISn), scaling (BSCALE / BZERO / BLANK) and WCS numbers that are not what
FITS says they must be would otherwise surface as obscure astropy or wcslib errors,
or as NaN positions; here they become a :class:`~glue_ssclump.core.ppv_cube.CubeError`
naming the keyword to fix.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from astropy.io import fits

from .ppv_cube import CubeError


def _reason(exc: BaseException) -> str:
    """``Type: first line`` of an exception, short enough for a one-line message."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


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
