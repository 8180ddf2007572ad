"""Clump detectors, as pluggy plugins (built-ins included)."""

from .base import (
    ENTRY_POINT_GROUP,
    Detector,
    DetectorError,
    Param,
    hookimpl,
    parse_param_assignments,
)
from .registry import (
    DetectionResult,
    available_detectors,
    get_detector,
    plugin_manager,
    relabel_consecutive,
    run_detector,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "DetectionResult",
    "Detector",
    "DetectorError",
    "Param",
    "available_detectors",
    "get_detector",
    "hookimpl",
    "parse_param_assignments",
    "plugin_manager",
    "relabel_consecutive",
    "run_detector",
]
