"""Galaxy clumps in a real glue application (offscreen): boxes in glue's image viewer,
brushing both ways, verdict buttons, the detect dialog on a worker thread with the real
Faster R-CNN core, errors shown while glue keeps running.

Run: ``QT_QPA_PLATFORM=offscreen GLUE_TESTING=True MPLBACKEND=Agg pytest
tests/test_galaxy_qt.py``. Set ``GLUE_SSCLUMP_SCREENSHOT_DIR`` to copy the screenshots
there (docs/images/galaxy_*.png were made that way).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("glue_qt")
pytest.importorskip("pytestqt")

from astropy.table import Table  # noqa: E402
from glue.core.roi import RectangularROI  # noqa: E402
from glue.core.subset import ElementSubsetState  # noqa: E402
from PIL import Image  # noqa: E402
from qtpy import QtWidgets  # noqa: E402

from glue_ssclump.core.galaxy import read_galaxy_image, synth_galaxy, write_gri_fits  # noqa: E402
from glue_ssclump.integration.galaxy_factory import (  # noqa: E402
    attach_galaxy_clumps,
    galaxy_pairs,
    load_galaxy_clumps,
)
from glue_ssclump.integration.galaxy_verdicts import group_label, verdicts_of  # noqa: E402
from glue_ssclump.qt import threads  # noqa: E402
from glue_ssclump.qt.galaxy_dialog import GalaxyDialog  # noqa: E402
from glue_ssclump.qt.galaxy_viewer import show_galaxy  # noqa: E402
from glue_ssclump.qt.menus import GALAXY_LABEL  # noqa: E402

NY, NX = 48, 72
#: (x, y) = numpy column / row as stored (row 0 = top PNG row): off-centre on purpose.
CLUMPS_XY = [(10.0, 8.0), (58.0, 36.0), (30.0, 30.0)]


def _screenshot(widget: QtWidgets.QWidget, path: Path) -> Path:
    assert widget.grab().save(str(path))
    target = os.environ.get("GLUE_SSCLUMP_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
    return path


def _table(xy, half: float = 3.0) -> Table:
    xy = np.asarray(xy, dtype=float)
    t = Table()
    t["clump_id"] = np.arange(1, len(xy) + 1)
    t["x"], t["y"] = xy[:, 0], xy[:, 1]
    t["x_min"], t["y_min"] = xy[:, 0] - half, xy[:, 1] - half
    t["x_max"], t["y_max"] = xy[:, 0] + half, xy[:, 1] + half
    t["score"] = [0.95, 0.8, 0.6]
    t["class"] = ["clump", "clump", "odd"]
    return t


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A non-symmetric RGB PNG with three bright spots; a synthetic g,r,i galaxy FITS."""
    root = tmp_path_factory.mktemp("galaxy_qt")
    rgb = np.full((NY, NX, 3), 20, dtype=np.uint8)
    rgb[:, :, 2] = np.linspace(0, 120, NY, dtype=np.uint8)[:, None]  # blue ramp: top dark
    for x, y in CLUMPS_XY:
        rgb[int(y) - 2:int(y) + 3, int(x) - 2:int(x) + 3] = 255
    png = root / "spots.png"
    Image.fromarray(rgb).save(png)
    image, truth = synth_galaxy(11, size=96, n_clumps=3, n_stars=1)
    gri = write_gri_fits(root / "synth_gri.fits", image)
    bad = root / "notes.png"
    bad.write_text("not an image")
    return {"png": png, "gri": gri, "truth": truth, "bad": bad, "root": root}


@pytest.fixture(scope="module")
def glue_app(qapp, tmp_path_factory):
    from glue_qt.app import GlueApplication

    import glue_ssclump

    os.environ["HOME"] = str(tmp_path_factory.mktemp("home"))
    glue_ssclump.setup()  # what glue's plugin loader calls: factories, auto-linkers, menus
    app = GlueApplication()
    app.resize(1400, 900)
    yield app
    for w in QtWidgets.QApplication.topLevelWidgets():
        if isinstance(w, QtWidgets.QMessageBox):
            w.close()
    threads.stop_all()
    app.close()


def _region_layers(viewer, data):
    from glue.viewers.scatter.layer_artist import ScatterRegionLayerArtist

    return [la for la in viewer.layers if isinstance(la, ScatterRegionLayerArtist)
            and (la.layer is data or getattr(la.layer, "data", None) is data)]


def _boxes(layer) -> list[tuple[float, float, float, float]]:
    """(x0, y0, x1, y1) in display pixels of each drawn box."""
    out = []
    for patch in layer.region_collection.patches:
        v = patch.get_path().vertices
        out.append((v[:, 0].min(), v[:, 1].min(), v[:, 0].max(), v[:, 1].max()))
    return sorted(out)


def test_boxes_in_image_viewer_and_brushing_both_ways(qtbot, glue_app, files, tmp_path):
    app = glue_app
    dc = app.data_collection
    image = read_galaxy_image(str(files["png"]))
    image_data, clumps = attach_galaxy_clumps(dc, image, _table(CLUMPS_XY))
    viewer = show_galaxy(app, image_data, clumps)
    app.show()
    data_layer = _region_layers(viewer, clumps)[0]
    qtbot.waitUntil(lambda: data_layer.enabled and len(data_layer.region_collection.patches) == 3)
    # Displayed where glue shows the PNG's pixels: row y of the file at NY - 1 - y.
    per_row = [(x - 3, NY - 1 - y - 3, x + 3, NY - 1 - y + 3) for x, y in CLUMPS_XY]
    np.testing.assert_allclose(_boxes(data_layer), sorted(per_row))
    lum = np.asarray(image_data["luminance"])
    assert lum[NY - 1 - 8, 10] == 255 and lum[8, 10] < 255  # the spot, not its mirror

    # Image -> table: a rectangle drawn on the image selects the clump it encloses, in
    # a new group (show_galaxy released the edit subset: glue-qt had made the newest
    # verdict group the edit subset, which the region would have replaced).
    groups_before = list(dc.subset_groups)
    viewer.apply_roi(RectangularROI(5, 15, NY - 1 - 8 - 5, NY - 1 - 8 + 5))
    region_group = dc.subset_groups[-1]
    assert region_group not in groups_before
    subset = next(s for s in region_group.subsets if s.data is clumps)
    np.testing.assert_array_equal(subset.to_mask(), [True, False, False])
    rejected = next(g for g in dc.subset_groups if g.label == group_label(clumps, "rejected"))
    assert not next(s for s in rejected.subsets if s.data is clumps).to_mask().any()

    # Table -> image: rows selected in glue's table viewer light up their boxes.
    from glue_qt.viewers.table import TableViewer

    table = app.new_data_viewer(TableViewer, data=clumps)
    table.apply_subset_state(ElementSubsetState(indices=[1, 2], data=clumps))
    rows_group = dc.subset_groups[-1]
    layer = next(la for la in _region_layers(viewer, clumps) if getattr(la.layer, "group", None) is rows_group)
    qtbot.waitUntil(lambda: layer.enabled and len(layer.region_collection.patches) == 2)
    np.testing.assert_allclose(_boxes(layer), sorted(per_row[k] for k in (1, 2)))
    assert layer.state.fill is False  # outlined, the clump stays visible

    # Verdict buttons act on that selection; the rejected group draws their boxes.
    dialog = GalaxyDialog(app.session, dc, parent=app)
    app.session.edit_subset_mode.edit_subset = [rows_group]
    assert dialog.mark("rejected") == 2, dialog.last_message
    assert verdicts_of(clumps).tolist() == ["clump", "rejected", "rejected"]
    rej_layer = next(la for la in _region_layers(viewer, clumps) if getattr(la.layer, "group", None) is rejected)
    qtbot.waitUntil(lambda: len(rej_layer.region_collection.patches) == 2)
    assert rejected.style.color == "#d62728"
    for window, w, h in ((viewer, 620, 520), (table, 780, 260)):
        (window.parent() or window).resize(w, h)
    (viewer.parent() or viewer).move(0, 0)
    (table.parent() or table).move(0, 530)
    QtWidgets.QApplication.processEvents()
    _screenshot(app, tmp_path / "galaxy_png_brushing.png")
    dialog.close()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """An untrained detector checkpoint (real core, fixed seed): enough to exercise
    loading, fine-tuning and detection (at score 0 it still returns boxes), not to find
    clumps; that is the shipped model's test."""
    import torch

    from glue_ssclump.core.galaxy import build_detector, save_galaxy_checkpoint

    torch.manual_seed(0)
    return save_galaxy_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt",
                                  build_detector())


def _galaxy_dialog(app) -> GalaxyDialog:
    actions = {a.text(): a for a in app._actions["plugins"]}
    actions[GALAXY_LABEL].trigger()
    dialogs = [d for d in app.findChildren(GalaxyDialog) if d.data_collection is app.data_collection]
    assert len(dialogs) == 1 and dialogs[0].isVisible()  # one per window, raised again
    return dialogs[0]


def test_dialog_cancel_leaves_the_session_unchanged(qtbot, glue_app, files, tiny_checkpoint):
    app = glue_app
    n_before = len(app.data_collection)
    dialog = _galaxy_dialog(app)
    dialog.set_paths([str(files["gri"])])
    dialog.ui.text_model.setText(str(tiny_checkpoint))
    dialog.ui.group_finetune.setChecked(True)
    dialog.ui.value_n_train.setValue(500)  # far more than the test waits for
    assert dialog.run()
    assert not dialog.ui.button_run.isEnabled() and dialog.ui.button_cancel.isEnabled()
    dialog.ui.button_cancel.click()
    with qtbot.waitSignal(dialog.worker.done, timeout=60_000):
        pass
    assert dialog.worker.outcome == "cancelled"
    assert "unchanged" in dialog.ui.label_status.text()
    assert len(app.data_collection) == n_before and dialog.ui.button_run.isEnabled()


def test_dialog_finetunes_and_detects_on_a_worker(qtbot, glue_app, files, tiny_checkpoint,
                                                  tmp_path):
    """The real core end to end: load a checkpoint, fine-tune it on synthetic galaxies,
    detect on a synthetic g,r,i FITS, put the result into glue, open the viewer."""
    app = glue_app
    dc = app.data_collection
    n_before = len(dc)
    dialog = _galaxy_dialog(app)
    dialog.set_paths([str(files["gri"])])
    dialog.ui.text_model.setText(str(tiny_checkpoint))
    dialog.ui.value_score_min.setValue(0.0)  # the tiny model's scores are low
    dialog.ui.group_finetune.setChecked(True)
    dialog.ui.value_n_train.setValue(4)
    dialog.ui.value_epochs.setValue(1)
    dialog.ui.text_save.setText(str(tmp_path / "finetuned.pt"))
    fractions: list[float] = []
    assert dialog.run()
    dialog.worker.progressed.connect(lambda f, m: fractions.append(f))
    with qtbot.waitSignal(dialog.worker.done, timeout=120_000):
        pass
    assert dialog.worker.outcome == "succeeded", dialog.last_message
    assert fractions and fractions == sorted(fractions)
    assert dialog.ui.progress_bar.value() == 1000
    assert (tmp_path / "finetuned.pt").exists() and "finetuned.pt" in dialog.ui.label_status.text()
    image_data, clumps = dialog.image_data, dialog.clump_data
    assert len(dc) == n_before + 2 and (image_data, clumps) in galaxy_pairs(dc)
    for name in ("clump_id", "x", "y", "x_min", "y_max", "ra", "dec", "score", "class",
                 "class_id", "flux_ratio", "verdict"):
        assert name in [c.label for c in clumps.main_components], name
    assert clumps.size > 0 and set(verdicts_of(clumps)) <= {"clump", "odd"}
    viewer = dialog.viewer
    assert viewer is not None and viewer.state.reference_data is image_data
    layer = _region_layers(viewer, clumps)[0]
    qtbot.waitUntil(lambda: layer.enabled
                    and len(layer.region_collection.patches) == clumps.size)
    # FITS rows are not flipped: the catalogue's (x, y) is the image pixel it links to.
    np.testing.assert_allclose(clumps[image_data.pixel_component_ids[0]], clumps["y"],
                               atol=1e-6)
    clump_group = next(g for g in dc.subset_groups if g.label == group_label(clumps, "clump"))
    assert next(s for s in clump_group.subsets if s.data is clumps).to_mask().sum() \
        == int((verdicts_of(clumps) == "clump").sum())
    _screenshot(dialog, tmp_path / "galaxy_dialog_finetuned.png")

    # Detecting again on the same file replaces the catalogue, in the same viewer, with
    # the detector fine-tuned above (no checkpoint typed in).
    from glue_ssclump.core.galaxy import GalaxyModel

    assert isinstance(dialog.model, GalaxyModel)
    dialog.ui.group_finetune.setChecked(False)
    dialog.ui.text_model.setText("")
    assert dialog.run()
    assert dialog.worker._args[2] is dialog.model
    with qtbot.waitSignal(dialog.worker.done, timeout=120_000):
        pass
    assert dialog.worker.outcome == "succeeded", dialog.last_message
    assert dialog.image_data is image_data and dialog.clump_data is not clumps
    assert len(dc) == n_before + 2 and clumps not in dc and dialog.viewer is viewer
    new_layer = _region_layers(viewer, dialog.clump_data)[0]
    qtbot.waitUntil(lambda: new_layer.enabled and len(new_layer.region_collection.patches)
                    == dialog.clump_data.size)
    assert not _region_layers(viewer, clumps)


def test_bad_image_shows_the_message_and_glue_keeps_running(qtbot, glue_app, files,
                                                             tiny_checkpoint, tmp_path):
    app = glue_app
    dc = app.data_collection
    n_before = len(dc)
    dialog = _galaxy_dialog(app)
    dialog.ui.group_finetune.setChecked(False)
    dialog.set_paths([str(files["bad"])])
    assert dialog.run()
    with qtbot.waitSignal(dialog.worker.done, timeout=60_000):
        pass
    assert dialog.worker.outcome == "failed"
    level, title, text = dialog.last_message
    assert level == "critical" and "not a readable PNG / JPEG" in text
    assert "Unexpected error" not in text  # the core's message, not a traceback
    boxes = [w for w in QtWidgets.QApplication.topLevelWidgets()
             if isinstance(w, QtWidgets.QMessageBox) and w.isVisible()]
    assert boxes and "not a readable" in boxes[-1].text()
    for box in boxes:
        box.close()
    assert len(dc) == n_before and app.isVisible()
    assert dialog.ui.button_run.isEnabled()
    # Nothing detected: the image opens alone, the status says why, glue keeps going.
    dialog.set_paths([str(shutil.copy(files["png"], tmp_path / "nothing.png"))])
    dialog.ui.text_model.setText(str(tiny_checkpoint))
    dialog.ui.value_score_min.setValue(0.99)  # the untrained detector scores ~1/3
    assert dialog.run()
    with qtbot.waitSignal(dialog.worker.done, timeout=60_000):
        pass
    assert dialog.worker.outcome == "succeeded", dialog.last_message
    assert dialog.clump_data is None and dialog.image_data in dc
    assert len(dc) == n_before + 1  # the image, no empty catalogue
    assert "No clump at score" in dialog.ui.label_status.text()
    assert dialog.viewer is not None and dialog.viewer.state.reference_data is dialog.image_data
    dc.remove(dialog.image_data)
    # No file: the dialog says what to give instead of starting.
    dialog.set_paths([])
    assert not dialog.run()
    assert dialog.last_message[1] == "No image"
    _close_boxes()


def test_factory_in_glue_opens_image_and_clumps_linked(qtbot, glue_app, files,
                                                       tiny_checkpoint):
    app = glue_app
    dc = app.data_collection
    datasets = load_galaxy_clumps(str(files["gri"]), score_min=0.0, model=str(tiny_checkpoint))
    app.add_datasets(datasets)  # glue runs the auto-linkers here
    image_data, clumps = datasets
    assert (image_data, clumps) in galaxy_pairs(dc)
    # The synthetic galaxy has no WCS: x, y are linked to the image's pixel axes.
    assert clumps.meta["ssclump_region_centres"] == "x,y"
    links = [(link.get_from_ids()[0].label, link.get_to_id()) for link in dc.external_links
             if getattr(link, "get_from_ids", None)
             and link.get_from_ids()[0].parent is clumps]
    assert links == [("x", image_data.pixel_component_ids[1]),
                     ("y", image_data.pixel_component_ids[0])]
    row = np.asarray(clumps[image_data.pixel_component_ids[0]])
    np.testing.assert_allclose(row, clumps["y"], atol=1e-6)  # FITS rows as stored


def _close_boxes() -> None:
    for w in QtWidgets.QApplication.topLevelWidgets():
        if isinstance(w, QtWidgets.QMessageBox) and w.isVisible():
            w.close()


def test_screenshot_script_runs(qapp, tiny_checkpoint, tmp_path):
    """The script behind docs/images/galaxy_*.png (the docs use the shipped model)."""
    from glue_ssclump.qt.galaxy_demo import write_galaxy_screenshots

    paths = write_galaxy_screenshots(tmp_path, model=str(tiny_checkpoint), size=96,
                                     score_min=0.0)
    for path in paths.values():
        image = Image.open(path)
        assert image.width > 300 and image.height > 300
    assert not (tmp_path / "galaxy_synthetic_gri.fits").exists()
