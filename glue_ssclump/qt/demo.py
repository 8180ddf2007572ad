"""The demo's glue session: the verified cube and catalogue in linked glue-qt viewers.

:func:`build_application` lays out an image viewer on the cube (verdict subsets
overlaid), the catalogue in a table viewer and the verification viewer;
:func:`write_session` saves it as a ``.glu`` file that ``glue FILE.glu`` opens, plus
PNG screenshots of the whole window and of each viewer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def build_application(data_collection: Any, cube_data: Any, catalog_data: Any) -> Any:
    """A :class:`~glue_qt.app.GlueApplication` showing a verified detection."""
    from glue_qt.app import GlueApplication
    from glue_qt.viewers.image import ImageViewer
    from glue_qt.viewers.table import TableViewer

    from . import register_qt
    from .viewer import VerificationViewer

    register_qt()
    app = GlueApplication(data_collection)
    app.resize(1920, 1080)
    image = app.new_data_viewer(ImageViewer, data=cube_data)
    if catalog_data.size:
        brightest = np.argmax(catalog_data["peak_value"])
        image.state.slices = (int(np.asarray(catalog_data["peak_z"])[brightest]), 0, 0)
    table = app.new_data_viewer(TableViewer, data=catalog_data)
    verification = app.new_data_viewer(VerificationViewer, data=catalog_data)
    # the viewers tile the MDI area left of glue's side panels (about 1500 x 980 here)
    for viewer, (x, y, w, h) in ((image, (0, 0, 520, 600)), (table, (0, 600, 1500, 370)),
                                 (verification, (520, 0, 980, 600))):
        window = viewer.parent() if viewer.parent() is not None else viewer
        window.move(x, y)
        window.resize(w, h)
    return app


def _settle(viewers: list, timeout: float = 60.0) -> None:
    """Process events until every viewer that draws in the background (the
    verification viewer indexes the mask, then renders on worker threads) shows its
    current content, or ``timeout`` seconds pass: the screenshots are for people."""
    import time

    from qtpy import QtWidgets

    def drawn(viewer: Any) -> bool:
        return (getattr(viewer, "is_ready", True)
                and getattr(viewer, "display_is_current", True))

    end = time.monotonic() + timeout
    for _ in range(20):
        QtWidgets.QApplication.processEvents()
    while not all(drawn(v) for v in viewers) and time.monotonic() < end:
        QtWidgets.QApplication.processEvents()
        time.sleep(0.02)


def write_session(app: Any, out_dir: str | Path, name: str = "l1448_verified") -> dict[str, Path]:
    """Save ``app`` as ``NAME.glu`` (data included) and screenshots into ``out_dir``."""

    from ..integration.session import save_session

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"session": out / f"{name}.glu"}
    # glue's own save_session turns errors into a modal dialog (a hang offscreen);
    # this one raises.
    save_session(app, paths["session"], include_data=True)
    app.show()
    _settle(app.viewers[0])
    paths["screenshot"] = out / f"{name}_glue.png"
    app.grab().save(str(paths["screenshot"]))
    for viewer in app.viewers[0]:
        tag = type(viewer).__name__.lower()
        path = out / f"{name}_{tag}.png"
        viewer.grab().save(str(path))
        paths[tag] = path
    return paths
