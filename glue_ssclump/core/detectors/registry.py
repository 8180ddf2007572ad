"""The detector plugin manager and the one ``detect`` entry point."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

import numpy as np
import pluggy

from ..progress import Progress, ensure_progress
from .base import ENTRY_POINT_GROUP, PROJECT, Detector, DetectorError, DetectorSpecs

log = logging.getLogger(__name__)


#: Entry points that failed to load: name -> error message (shown by ``ssclump detectors``).
PLUGIN_ERRORS: dict[str, str] = {}


@lru_cache(maxsize=1)
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loaded from the entry-point group once.

    Each entry point is loaded on its own, so one broken third-party plugin is logged
    (and listed in :data:`PLUGIN_ERRORS`) instead of taking every detector down.
    """
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(DetectorSpecs)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # noqa: BLE001 - any plugin failure is reported, not fatal
            PLUGIN_ERRORS[ep.name] = f"{type(exc).__name__}: {exc}"
            log.warning("detector plugin %r failed to load: %s", ep.name, exc)
    return pm


def available_detectors() -> dict[str, Detector]:
    """All registered detectors, keyed by lower-case name."""
    found: dict[str, Detector] = {}
    for group in plugin_manager().hook.ssclump_detectors():
        for det in group or []:
            key = det.name.lower()
            if key in found:
                log.warning("detector %r registered twice; keeping the first", det.name)
                continue
            found[key] = det
    return found


def get_detector(name: str) -> Detector:
    """Look a detector up by name (case-insensitive), with a helpful error."""
    dets = available_detectors()
    try:
        return dets[name.lower()]
    except KeyError:
        raise DetectorError(
            f"unknown detector {name!r}; available: {', '.join(sorted(dets))}"
        ) from None


@dataclass
class DetectionResult:
    """A detector's mask (int32 clump ids, 0 = none) with what produced it."""

    mask: np.ndarray
    detector: str
    rms: float
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_candidates(self) -> int:
        return int(self.mask.max()) if self.mask.size else 0


def run_detector(
    data: np.ndarray,
    method: str,
    rms: float,
    params: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> DetectionResult:
    """Run detector ``method`` on a ``(v, y, x)`` array.

    Parameters
    ----------
    data : ndarray
        The cube in K, ``(v, y, x)``; NaN marks blank voxels.
    method : str
        Detector name (``clumpfind``, ``fellwalker``, ``dendrogram`` or a plugin's).
    rms : float
        Noise rms in K; levels given in rms units are converted with it.
    params : mapping, optional
        Parameter overrides (numbers in K, or strings like ``"3rms"``).
    progress : Progress, optional
        Progress / cancellation.

    Returns
    -------
    DetectionResult
        ``mask`` is int32, same shape as ``data``, 0 = none, ids 1..N consecutive.
    """
    if data.ndim != 3:
        raise DetectorError(f"detectors need a 3D (v, y, x) array, got shape {data.shape}")
    if not np.isfinite(rms) or rms <= 0:
        raise DetectorError(f"rms must be a positive number of K, got {rms!r}")
    det = get_detector(method)
    resolved = det.resolve(params, rms)
    progress = ensure_progress(progress)
    progress.update(0.0, f"{det.name}: detecting")
    mask = det.run(np.asarray(data, dtype=np.float32), float(rms), resolved, progress)
    mask = np.asarray(mask)
    if mask.shape != data.shape:
        raise DetectorError(
            f"detector {det.name!r} returned a mask of shape {mask.shape}, "
            f"expected {data.shape}"
        )
    mask = relabel_consecutive(mask)
    progress.update(1.0, f"{det.name}: {int(mask.max())} candidates")
    return DetectionResult(mask=mask, detector=det.name, rms=float(rms), params=resolved)


def relabel_consecutive(mask: np.ndarray) -> np.ndarray:
    """Renumber a mask to 1..N (order of first id kept), as int32."""
    mask = np.asarray(mask)
    ids = np.unique(mask)
    ids = ids[ids > 0]
    if ids.size and ids[0] == 1 and ids[-1] == ids.size and mask.dtype == np.int32:
        return mask
    lut = np.zeros(int(ids.max()) + 1 if ids.size else 1, dtype=np.int32)
    lut[ids] = np.arange(1, ids.size + 1, dtype=np.int32)
    out = np.where(mask > 0, lut[np.clip(mask, 0, None)], 0)
    return out.astype(np.int32)
