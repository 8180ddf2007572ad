"""Screenshots of the galaxy side in a real glue application (docs/images/galaxy_*.png).

``python -m glue_ssclump.qt.galaxy_demo OUT_DIR [--model CKPT] [--seed N]`` makes a
synthetic g,r,i galaxy (its truth known), writes it as a FITS cube, runs the galaxy
dialog on it (the shipped detector unless ``--model``), selects the faintest detection
in the table viewer, marks it rejected with the dialog's button, draws a region on the
image around another clump, and saves:

- ``galaxy_glue_app.png``: the whole window (image viewer with the boxes coloured by
  verdict group, the clump table, the dialog);
- ``galaxy_viewer.png``: the image viewer alone;
- ``galaxy_dialog.png``: the dialog after the run.

Run it offscreen: ``QT_QPA_PLATFORM=offscreen python -m glue_ssclump.qt.galaxy_demo
docs/images``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_galaxy_screenshots"]


def _wait(condition: Any, timeout: float = 300.0) -> None:
    from qtpy import QtWidgets

    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the galaxy run did not finish in time")
        QtWidgets.QApplication.processEvents()
        time.sleep(0.02)


def write_galaxy_screenshots(out_dir: str | Path, model: str | None = None,
                             seed: int = 4, size: int = 200,
                             score_min: float = 0.3) -> dict[str, Path]:
    """Build the session, take the screenshots, return their paths.

    Parameters
    ----------
    out_dir : str or Path
        Where the PNGs go (the galaxy FITS is written there too, then removed).
    model : str, optional
        Detector checkpoint; default the shipped model.
    seed, size : int
        The synthetic galaxy (``synth_galaxy(seed, size)``).
    score_min : float
        The dialog's minimum score.
    """
    from glue.core.roi import RectangularROI
    from glue.core.subset import ElementSubsetState
    from glue_qt.app import GlueApplication
    from glue_qt.utils import get_qapp
    from glue_qt.viewers.table import TableViewer
    from qtpy import QtWidgets

    import glue_ssclump

    from ..core.galaxy import synth_galaxy, write_gri_fits
    from .menus import open_galaxy_dialog

    get_qapp()
    glue_ssclump.setup()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    image, _truth = synth_galaxy(seed, size=size)
    fits_path = write_gri_fits(out / "galaxy_synthetic_gri.fits", image)
    app = GlueApplication()
    app.resize(1700, 960)
    app.show()
    try:
        dialog = open_galaxy_dialog(app.session, app.data_collection)
        dialog.set_paths([str(fits_path)])
        if model:
            dialog.ui.text_model.setText(str(model))
        dialog.ui.value_score_min.setValue(score_min)
        dialog.run()
        _wait(lambda: dialog.worker is not None and dialog.worker.outcome is not None)
        if dialog.worker.outcome != "succeeded":
            raise RuntimeError(f"the galaxy run {dialog.worker.outcome}: {dialog.last_message}")
        clumps, viewer = dialog.clump_data, dialog.viewer
        if clumps is None:
            raise RuntimeError(f"nothing detected: {dialog.ui.label_status.text()}")
        table = app.new_data_viewer(TableViewer, data=clumps)
        if clumps.size >= 2:
            # The faintest detection, selected in the table and rejected with the button.
            worst = int(np.argmin(np.asarray(clumps["score"])))
            table.apply_subset_state(ElementSubsetState(indices=[worst], data=clumps))
            dialog.mark("rejected")
            app.data_collection.remove_subset_group(app.data_collection.subset_groups[-1])
            # A region drawn on the image around the best clump selects its row.
            app.session.edit_subset_mode.edit_subset = []
            best = int(np.argmax(np.asarray(clumps["score"])))
            x, y = float(clumps["x"][best]), float(clumps["y"][best])
            viewer.apply_roi(RectangularROI(x - 10, x + 10, y - 10, y + 10))
            region = app.data_collection.subset_groups[-1]
            region.label = "Region on the image"
            region.style.color = "#1f9bd6"  # not one of the verdict colours
        # Zoom on the galaxy (it sits in the middle of the cut-out).
        c, half = (size - 1) / 2.0, 0.3 * size
        viewer.state.x_min, viewer.state.x_max = c - half, c + half
        viewer.state.y_min, viewer.state.y_max = c - half, c + half
        for window, (x0, y0, w, h) in ((viewer, (0, 0, 640, 640)),
                                       (table, (0, 640, 1370, 260))):
            holder = window.parent() if window.parent() is not None else window
            holder.move(x0, y0)
            holder.resize(w, h)
        dialog.move(app.x() + 860, app.y() + 120)
        for _ in range(30):
            QtWidgets.QApplication.processEvents()
            time.sleep(0.02)
        paths = {"app": out / "galaxy_glue_app.png", "viewer": out / "galaxy_viewer.png",
                 "dialog": out / "galaxy_dialog.png"}
        # The dialog is a separate top-level window: paint it into the app's picture.
        shot = app.grab()
        from qtpy import QtGui

        painter = QtGui.QPainter(shot)
        painter.drawPixmap(shot.width() - dialog.width() - 10, 80, dialog.grab())
        painter.end()
        shot.save(str(paths["app"]))
        viewer.grab().save(str(paths["viewer"]))
        dialog.grab().save(str(paths["dialog"]))
        dialog.close()
        return paths
    finally:
        fits_path.unlink(missing_ok=True)
        app.close()


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m glue_ssclump.qt.galaxy_demo OUT_DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--model", default=None, help="detector checkpoint (default: shipped)")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--score-min", type=float, default=0.3)
    args = parser.parse_args(argv)
    for name, path in write_galaxy_screenshots(args.out_dir, args.model, args.seed,
                                               score_min=args.score_min).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
