"""Detector description, parameter resolution and the pluggy hook specification.

A detector is a :class:`Detector`: a name, its parameters (:class:`Param`) and a
``run(data, rms, params, progress) -> mask`` function (the mask: an int32 array of
clump ids, 0 = none).  Plugins (the three
built-ins included) provide detectors through the ``ssclump_detectors`` hook and are
found through the ``glue_ssclump.detectors`` entry-point group; see
:mod:`glue_ssclump.core.detectors.registry`.

Levels (thresholds, contour steps) are given either in K (a number) or in units of the
cube's rms (a string such as ``"3rms"`` or ``"3*rms"``); defaults are in rms units.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pluggy

from ..errors import SSClumpError
from ..progress import Progress

PROJECT = "glue_ssclump"
ENTRY_POINT_GROUP = "glue_ssclump.detectors"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: Parameter kinds. ``level`` is an intensity: K, or a multiple of the rms.
PARAM_KINDS = ("level", "int", "float", "bool")

RunFunction = Callable[[np.ndarray, float, dict[str, Any], Progress], np.ndarray]


class DetectorError(SSClumpError):
    """A detector name or parameter the user gave cannot be used."""


@dataclass(frozen=True)
class Param:
    """One detector parameter.

    Parameters
    ----------
    name : str
        Name as in the detector's own documentation (CUPID names for ClumpFind and
        FellWalker); matched case-insensitively.
    default : float, int, bool or str
        Default value; ``level`` defaults are strings in rms units (``"3rms"``).
    kind : {'level', 'int', 'float', 'bool'}
    doc : str
        One line for ``--help`` and the Qt dialog (units included).
    """

    name: str
    default: Any
    kind: str
    doc: str

    def __post_init__(self) -> None:
        if self.kind not in PARAM_KINDS:
            raise ValueError(f"unknown parameter kind {self.kind!r}")


@dataclass(frozen=True)
class Detector:
    """A clump detector provided by a plugin.

    ``run(data, rms, params, progress)`` receives the cube as a float32 ``(v, y, x)``
    array (NaN = blank), the rms in K, the resolved parameters (levels in K) keyed by
    :attr:`Param.name`, and a :class:`Progress`; it returns the mask: an int32 array of
    the same shape, 0 = no candidate, candidates numbered 1..N (the clump ids).
    """

    name: str
    description: str
    params: tuple[Param, ...]
    run: RunFunction
    reference: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def param(self, name: str) -> Param:
        key = name.lower()
        for p in self.params:
            if p.name.lower() == key:
                return p
        known = ", ".join(p.name for p in self.params)
        raise DetectorError(
            f"detector {self.name!r} has no parameter {name!r}; known parameters: {known}"
        )

    def resolve(self, user: Mapping[str, Any] | None, rms: float) -> dict[str, Any]:
        """Defaults overridden by ``user``, levels converted to K with ``rms``."""
        values = {p.name: p.default for p in self.params}
        for key, value in (user or {}).items():
            values[self.param(key).name] = value
        return {p.name: convert_value(p, values[p.name], rms) for p in self.params}


def parse_level(value: Any) -> tuple[float, str]:
    """A level as ``(number, unit)``: ``'3rms'``, ``'2.5 x rms'`` -> rms; ``0.4``, ``'0.4K'`` -> K.

    Raises
    ------
    ValueError
        The text is not a number with an optional ``rms`` or ``K`` suffix.
    """
    if not isinstance(value, str):
        return float(value), "K"
    text = value.strip().lower().replace(" ", "")
    if text.endswith("rms"):
        return float(text[:-3].rstrip("*x") or "1"), "rms"
    return float(text[:-1] if text.endswith("k") else text), "K"


def convert_value(param: Param, value: Any, rms: float) -> Any:
    """Convert one user value (number, or string from the CLI) to its kind."""
    try:
        if param.kind == "level":
            number, unit = parse_level(value)
            return _finite(number) * float(rms) if unit == "rms" else _finite(number)
        if param.kind == "int":
            as_float = float(value)
            if as_float != int(as_float):
                raise ValueError
            return int(as_float)
        if param.kind == "float":
            return _finite(float(value))
        if isinstance(value, str):
            text = value.strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        return bool(value)
    except (TypeError, ValueError):
        hint = " (a number in K, or e.g. '3rms')" if param.kind == "level" else ""
        raise DetectorError(
            f"parameter {param.name}={value!r} is not a valid {param.kind}{hint}"
        ) from None


def _finite(number: float) -> float:
    # float() accepts 'nan' and 'inf'; a detector given either silently finds nothing
    # (every comparison with NaN is False), so they are refused like any other bad text.
    if not np.isfinite(number):
        raise ValueError
    return number


def parse_param_assignments(items: list[str] | None) -> dict[str, str]:
    """Parse CLI ``KEY=VALUE`` strings into a dict (values stay strings)."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise DetectorError(f"--param {item!r}: expected KEY=VALUE, e.g. Tlow=3rms")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


class DetectorSpecs:
    """Hook specifications for detector plugins."""

    @hookspec
    def ssclump_detectors(self) -> list[Detector]:  # type: ignore[empty-body]
        """Return the :class:`Detector` objects this plugin provides.

        A third-party package adds a detector by exposing a module (or object) with a
        ``@hookimpl``-decorated ``ssclump_detectors`` function under the entry-point
        group ``glue_ssclump.detectors``::

            [options.entry_points]
            glue_ssclump.detectors =
                mydetector = mypackage.mydetector
        """
