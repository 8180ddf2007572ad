"""The cube side of the viewer: its arrays, and the index of its candidates (a thread)."""

from __future__ import annotations

import numpy as np
from glue.core.data import BaseData
from qtpy import QtCore

from ...integration.pairing import CUBE_COMPONENT, KEY
from .. import threads
from ..candidates import CandidateIndex
from ..figure import cube_geometry

__all__ = ["CubeArrays", "IndexThread", "is_deleted"]


class CubeArrays:
    """The cube dataset's intensity and ``clump_id`` arrays and its geometry.

    Raises ``KeyError``, ``StopIteration`` or glue's ``IncompatibleAttribute`` for a
    dataset that cannot be used as the cube.
    """

    def __init__(self, data: BaseData) -> None:
        self.data = data
        names = {c.label: c for c in data.main_components}
        self.label_cid = names[KEY]
        intensity = names.get(CUBE_COMPONENT)
        if intensity is None:
            intensity = next(c for c in data.main_components
                             if c.label != KEY and data.get_kind(c) == "numerical")
        self.intensity_cid = intensity
        self.intensity = np.asarray(data[intensity])
        self.mask = np.asarray(data[self.label_cid])
        unit = data.get_component(intensity).units or "K"
        self.geometry = cube_geometry(data.coords, tuple(self.intensity.shape), str(unit))


def is_deleted(obj: QtCore.QObject) -> bool:
    """True once the C++ object behind a Qt wrapper has been destroyed."""
    try:
        obj.objectName()
    except RuntimeError:  # "wrapped C/C++ object ... has been deleted"
        return True
    return False


class IndexThread(QtCore.QThread):
    """Builds the :class:`CandidateIndex` (one ``find_objects`` pass) off the GUI thread.

    Deliberately without a Qt parent: the viewer's widgets can be destroyed before a
    build is done, and :mod:`glue_ssclump.qt.threads` keeps it alive until it ends.
    It cannot be interrupted (no ``request_stop``).

    Notes
    -----
    ``built(token, index_or_exception)`` is delivered on the GUI thread.
    """

    built = QtCore.Signal(int, object)

    def __init__(self, token: int, mask: np.ndarray) -> None:
        super().__init__()
        self._token = token
        self._mask = mask

    def start(self, priority: QtCore.QThread.Priority = QtCore.QThread.InheritPriority
              ) -> None:
        """Start the build (through :func:`glue_ssclump.qt.threads.start`)."""
        threads.start(self, priority)

    def run(self) -> None:  # the index thread
        try:
            result: object = CandidateIndex.build(self._mask)
        except Exception as exc:  # reported on the GUI thread
            result = exc
        self.built.emit(self._token, result)
