"""The verification viewer (glue-qt): display, labelling, navigation, selections, sessions.

Run offscreen: ``QT_QPA_PLATFORM=offscreen GLUE_TESTING=True MPLBACKEND=Agg pytest
tests/test_qt_viewer.py``. Set ``GLUE_SSCLUMP_SCREENSHOT_DIR`` to also copy the
L1448 screenshots there (docs/images was made that way).
"""

from __future__ import annotations

import csv
import os
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("glue_qt")
pytest.importorskip("pytestqt")

from astropy.io import fits  # noqa: E402
from astropy.wcs import WCS  # noqa: E402
from glue.core import Data, DataCollection  # noqa: E402
from glue.core.component import CategoricalComponent, Component  # noqa: E402
from glue.viewers.image.pixel_selection_subset_state import PixelSubsetState  # noqa: E402
from qtpy.QtCore import QItemSelectionModel, Qt  # noqa: E402

from glue_ssclump.core.labels import LabelsError, read_labels_csv  # noqa: E402
from glue_ssclump.qt import register_viewer  # noqa: E402
from glue_ssclump.qt import render as render_module  # noqa: E402
from glue_ssclump.qt.candidates import (  # noqa: E402
    CandidateIndex,
    candidate_views,
    crop_slices,
    outline_segments,
)
from glue_ssclump.qt.viewer import CURRENT_SUBSET_LABEL, VerificationViewer  # noqa: E402

# -- synthetic cube + catalogue, built with glue Data directly -------------------------

SHAPE = (24, 32, 40)  # (v, y, x)
BLOBS = [  # (x, y, z, amplitude K, sigma_xy pix, sigma_v chan)
    (10, 10, 8, 3.0, 2.0, 1.5),
    (28, 12, 14, 1.2, 2.5, 2.0),
    (20, 24, 10, 2.0, 1.5, 1.0),
    (32, 26, 17, 0.8, 2.0, 1.5),
]
SNR = [30.0, 12.0, 20.0, 8.0]
P_CLUMP = [0.9, 0.52, 0.7, 0.3]  # |p - 0.5| = 0.4, 0.02, 0.2, 0.2


def _rendering_done(viewer) -> bool:
    """Nothing queued or being drawn by the render thread, and every image it drew
    has reached the viewer (the thread's own state, not a test hook)."""
    return viewer._renderer.idle  # noqa: SLF001


def _galactic_wcs() -> WCS:
    h = fits.Header()
    h["NAXIS"] = 3
    h["CTYPE1"], h["CRVAL1"], h["CDELT1"], h["CRPIX1"], h["CUNIT1"] = \
        "GLON-CAR", 30.0, -0.01, 20.0, "deg"
    h["CTYPE2"], h["CRVAL2"], h["CDELT2"], h["CRPIX2"], h["CUNIT2"] = \
        "GLAT-CAR", 0.0, 0.01, 16.0, "deg"
    h["CTYPE3"], h["CRVAL3"], h["CDELT3"], h["CRPIX3"], h["CUNIT3"] = \
        "VRAD", 10000.0, 500.0, 1.0, "m/s"
    return WCS(h)


def _synthetic_arrays() -> tuple[np.ndarray, np.ndarray]:
    z, y, x = np.indices(SHAPE, dtype=float)
    rng = np.random.default_rng(1)
    cube = rng.normal(0.0, 0.1, SHAPE)
    mask = np.zeros(SHAPE, dtype=np.int32)
    for i, (bx, by, bz, amp, sxy, sv) in enumerate(BLOBS):
        model = amp * np.exp(-0.5 * (((x - bx) ** 2 + (y - by) ** 2) / sxy ** 2
                                     + (z - bz) ** 2 / sv ** 2))
        cube += model
        mask[(model > 0.3 * amp) & (mask == 0)] = i + 1
    cube[0, 0, :] = np.nan  # a blank row, as in real cubes
    return cube.astype(np.float32), mask


def make_synthetic(label: str = "synth") -> tuple[Data, Data]:
    """A cube Data (intensity + clump_id, galactic WCS) and its catalogue, joined."""
    cube, mask = _synthetic_arrays()
    wcs = _galactic_wcs()
    cube_data = Data(label=label, coords=wcs)
    cube_data.add_component(Component(cube, units="K"), "intensity")
    cube_data.add_component(Component(mask), "clump_id")
    n = len(BLOBS)
    ids = np.arange(1, n + 1)
    peak = np.array([np.unravel_index(np.nanargmax(np.where(mask == i, cube, -np.inf)),
                                      SHAPE) for i in ids])  # (z, y, x)
    lon, lat, vel = wcs.pixel_to_world_values(peak[:, 2], peak[:, 1], peak[:, 0])
    cat = Data(label=f"{label} candidates")
    cat.add_component(Component(ids), "clump_id")
    cat.add_component(CategoricalComponent(np.array(["clumpfind"] * n)), "detector")
    cat.add_component(Component(np.array([cube[tuple(p)] for p in peak]), units="K"),
                      "peak_value")
    for name, col in (("peak_x", 2), ("peak_y", 1), ("peak_z", 0)):
        cat.add_component(Component(peak[:, col].astype(float)), name)
    cat.add_component(Component(lon), "cen_lon")
    cat.add_component(Component(lat), "cen_lat")
    cat.add_component(Component(vel / 1000.0, units="km / s"), "cen_vel")
    cat.add_component(Component(vel / 1000.0, units="km / s"), "peak_vel")
    cat.add_component(Component(np.array([(mask == i).sum() for i in ids])), "npix")
    cat.add_component(Component(np.array([np.nansum(cube[mask == i]) for i in ids]),
                                units="K"), "flux")
    cat.add_component(Component(np.array(SNR)), "snr_peak")
    cube_data.join_on_key(cat, "clump_id", "clump_id")
    return cube_data, cat


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private HOME, so the default autosave path (~/.glue_ssclump) is in tmp."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _app(*datasets):
    from glue_qt.app import GlueApplication

    return GlueApplication(DataCollection(list(datasets)))


def _wait_ready(qtbot, viewer) -> None:
    qtbot.waitUntil(lambda: viewer.is_ready, timeout=30000)


@pytest.fixture
def synth(qtbot, home):
    cube, cat = make_synthetic()
    app = _app(cube, cat)
    viewer = app.new_data_viewer(VerificationViewer, data=cat)
    _wait_ready(qtbot, viewer)
    yield app, viewer, cube, cat
    viewer.close(warn=False)
    app.close()


def _labels(cat: Data) -> np.ndarray:
    return np.asarray(cat["label"])


def _group(dc, label):
    return next((g for g in dc.subset_groups if g.label == label), None)


# -- pure numpy parts ---------------------------------------------------------------------


def test_index_boxes_and_sparse_ids():
    mask = np.zeros((5, 6, 7), dtype=np.int32)
    mask[1:3, 2:4, 1:6] = 7
    mask[4, 5, 6] = 2
    idx = CandidateIndex.build(mask)
    assert set(idx.boxes) == {2, 7}
    assert idx.boxes[7] == (slice(1, 3), slice(2, 4), slice(1, 6))
    big = np.where(mask == 7, 10_000_000, mask).astype(np.int64)
    assert CandidateIndex.build(big).boxes[10_000_000] == idx.boxes[7]
    assert CandidateIndex.build(np.zeros((2, 2, 2), int)).boxes == {}


def test_crop_margin():
    box = (slice(10, 14), slice(0, 20), slice(50, 51))
    crop = crop_slices(box, (100, 100, 60), margin_frac=0.5, margin_min=5)
    assert crop == (slice(5, 19), slice(0, 30), slice(45, 56))


def test_outline_of_one_pixel_and_a_bar():
    xs, ys = outline_segments(np.array([[True]]), x0=3, y0=4)
    pts = {(a, b) for a, b in zip(xs, ys, strict=True) if np.isfinite(a)}
    assert pts == {(2.5, 3.5), (3.5, 3.5), (2.5, 4.5), (3.5, 4.5)}
    xs, _ = outline_segments(np.array([[True, True, True]]))
    assert np.isnan(xs).sum() == 8  # 3 bottom + 3 top + 2 ends


def test_candidate_views_synthetic():
    cube, mask = _synthetic_arrays()
    idx = CandidateIndex.build(mask)
    v = candidate_views(cube, mask, 1, idx.boxes[1], margin_frac=0.5, margin_min=5,
                        channel_width=0.5)
    z, y, x = v.crop
    sub = np.nan_to_num(cube[v.crop])
    np.testing.assert_allclose(v.map_lb, sub.sum(0) * 0.5, rtol=1e-5)
    np.testing.assert_array_equal(v.foot_lb, (mask[v.crop] == 1).any(0))
    np.testing.assert_array_equal(v.foot_bv, (mask[v.crop] == 1).any(2))
    assert v.peak_xyz == (10, 10, 8)
    np.testing.assert_allclose(v.peak_spectrum, cube[v.channels, 10, 10])
    foot = v.foot_lb
    expected = np.nanmean(cube[v.channels][:, y, x][:, foot], axis=1)
    np.testing.assert_allclose(v.mean_spectrum, expected, rtol=1e-5)
    # margin: at least 5 pixels around the box where the cube allows
    bz = idx.boxes[1][0]
    assert z.start == max(0, bz.start - 5) and z.stop == min(SHAPE[0], bz.stop + 5)


# -- the fast on-screen figure (render thread) ---------------------------------------------


def _draw_both(cids, size=(9.6, 6.4), world=True):
    """Each candidate drawn by the WCSAxes figure (full redraw) and the fast figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from glue_ssclump.qt.figure import FastVerificationFigure, VerificationFigure, cube_geometry

    cube, mask = _synthetic_arrays()
    idx = CandidateIndex.build(mask)
    geo = cube_geometry(_galactic_wcs() if world else None, SHAPE)
    figures = {}
    for name, cls in (("full", VerificationFigure), ("fast", FastVerificationFigure)):
        fig = Figure(dpi=100, figsize=size)
        FigureCanvasAgg(fig)
        vfig = cls(fig)
        vfig.setup(geo)
        figures[name] = (fig, vfig)
    for cid in cids:
        views = candidate_views(cube, mask, cid, idx.boxes[cid],
                                channel_width=geo.channel_width)
        out = {}
        for name, (fig, vfig) in figures.items():
            vfig.show(views)
            vfig.draw() if name == "fast" else fig.canvas.draw()
            out[name] = (vfig, np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int))
        yield cid, geo, out


def test_fast_figure_ticks_are_wcsaxes_ticks():
    for cid, geo, out in _draw_both([1, 2, 3, 4]):
        full, _ = out["full"]
        fast, _ = out["fast"]
        for p, (xc, yc) in enumerate(((0, 1), (0, 2), (1, 2))):
            ax = full.maps[p].ax
            (xv, xl), (yv, yl) = fast._ticks(fast.artists.maps[p].ax, fast._world[p], p)  # noqa: SLF001
            # the labels WCSAxes drew (left to right; top to bottom); no public getter
            drawn_x = ax.coords[xc]._ticklabels.text["b"]  # noqa: SLF001
            drawn_y = ax.coords[yc]._ticklabels.text["l"]  # noqa: SLF001
            assert xl == drawn_x, (cid, p)
            assert yl[::-1] == drawn_y, (cid, p)
            assert len(xl) >= 2 and len(yl) >= 2
        # and each tick sits where the world coordinate has its label's value
        fax = fast.artists.maps[0].ax
        (xv, xl), (yv, yl) = fast._ticks(fax, fast._world[0], 0)  # noqa: SLF001
        y_edge, x_edge = fax.get_ylim()[0], fax.get_xlim()[0]
        lon = geo.wcs.pixel_to_world_values(xv, np.full(xv.size, y_edge), np.zeros(xv.size))[0]
        lat = geo.wcs.pixel_to_world_values(np.full(yv.size, x_edge), yv, np.zeros(yv.size))[1]
        np.testing.assert_allclose(lon, [float(t.rstrip("°")) for t in xl], atol=1e-6)
        np.testing.assert_allclose(lat, [float(t.rstrip("°").replace("−", "-")) for t in yl],
                                   atol=1e-6)


@pytest.mark.parametrize("world", [True, False], ids=["wcs", "pixel-axes"])
def test_fast_figure_looks_like_the_full_redraw(world):
    for cid, _, out in _draw_both([1, 2, 3, 4], world=world):
        a, b = out["full"][1], out["fast"][1]
        assert a.shape == b.shape
        diff = np.abs(a - b).max(axis=2)
        # antialiasing and sub-pixel text placement differ; nothing is missing or moved
        assert (diff > 64).mean() < 0.02, cid
        h, w = (a.shape[0] // 8) * 8, (a.shape[1] // 8) * 8
        blocks = np.abs(a[:h, :w].reshape(h // 8, 8, w // 8, 8, 3).mean((1, 3))
                        - b[:h, :w].reshape(h // 8, 8, w // 8, 8, 3).mean((1, 3)))
        assert blocks.max() < 60, cid
        assert (b < 128).any(axis=2).mean() > 0.02  # a figure, not a blank page


def test_text_sprites_drawn_once_and_in_place():
    from matplotlib.backends.backend_agg import RendererAgg

    from glue_ssclump.qt.figure import TextSprites

    sprites = TextSprites(maxsize=3)
    renderer = RendererAgg(200, 100, 100)
    box = sprites.draw(renderer, "30°42′", 100, 50, size=9, ha="center", va="center")
    ink = np.argwhere(np.asarray(renderer.buffer_rgba())[..., 3] > 0)  # (row from top, col)
    x0, y0, x1, y1 = box
    assert abs(ink[:, 1].min() - x0) <= 2 and abs(ink[:, 1].max() + 1 - x1) <= 2
    assert abs((100 - ink[:, 0].max() - 1) - y0) <= 2 and abs((100 - ink[:, 0].min()) - y1) <= 2
    assert abs(0.5 * (x0 + x1) - 100) < 1 and abs(0.5 * (y0 + y1) - 50) < 1
    first = sprites._sprite("30°42′", 9, "black", 0, 100.0)  # noqa: SLF001
    assert sprites._sprite("30°42′", 9, "black", 0, 100.0) is first  # noqa: SLF001
    w, h = sprites.extent("b", 9, 100.0, rotation=90)
    w0, h0 = sprites.extent("b", 9, 100.0)
    assert (w, h) == (h0, w0)
    for text in ("a", "b", "c", "d"):
        sprites.draw(renderer, text, 10, 10, size=8)
    assert len(sprites._items) == 3  # noqa: SLF001


# -- viewer on the synthetic data -------------------------------------------------------


def test_register_viewer():
    from glue_qt.config import qt_client

    cls = register_viewer()
    register_viewer()
    assert cls is VerificationViewer
    assert sum(m is VerificationViewer for m in qt_client.members) == 1


def test_opens_and_shows_first_candidate(synth, qtbot, tmp_path):
    app, viewer, cube, cat = synth
    assert viewer.state.cube_data is cube
    assert viewer.state.current_id == 1
    fig = viewer.vfigure
    lb, lv, bv = fig.maps
    xs, ys = lb.outline.get_data()
    assert np.isfinite(xs).sum() > 8
    # WCS axes in the cube's frame: galactic l / b and velocity in km/s
    assert lb.ax.coords[0].get_axislabel() == "l"
    assert lb.ax.coords[1].get_axislabel() == "b"
    assert lv.ax.coords[2].get_axislabel() == "v (km/s)"
    # spectra: dashed peak / centroid lines at the catalogue velocities, shaded range
    peak_panel = fig.spectra[0]
    assert peak_panel.vpeak.get_linestyle() == "--"
    v_peak = float(cat["peak_vel"][0])
    assert peak_panel.vpeak.get_xdata()[0] == pytest.approx(v_peak)
    assert peak_panel.span.get_width() > 0
    text = viewer.info_label.text()
    for word in ("clumpfind", "peak SNR", "30.0", "p_clump", "manual label", "not labelled"):
        assert word in text
    assert viewer.title_label.text() == "Candidate 1"
    viewer.canvas.draw()
    # the figure on screen is rendered off the GUI thread; the next candidates are
    # prefetched, so moving on shows them at once
    _wait_drawn(qtbot, viewer)
    qtbot.waitUntil(lambda: _rendering_done(viewer), timeout=60000)
    qtbot.keyClick(viewer, Qt.Key_J)
    assert viewer.state.current_id == 2 and viewer.display_is_current
    qtbot.keyClick(viewer, Qt.Key_K)
    assert viewer.state.current_id == 1 and viewer.display_is_current
    viewer.save_figure(tmp_path / "candidate_1.png")
    assert (tmp_path / "candidate_1.png").stat().st_size > 20000


def test_pairs_found_through_the_join(qtbot, home):
    cube_a, cat_a = make_synthetic("a")
    cube_b, cat_b = make_synthetic("b")
    app = _app(cube_a, cat_a, cube_b, cat_b)
    try:
        viewer = app.new_data_viewer(VerificationViewer, data=cube_b)
        assert viewer.state.cube_data is cube_b and viewer.state.catalog_data is cat_b
        viewer.state.catalog_data = cat_a  # choosing a catalogue brings its cube
        assert viewer.state.cube_data is cube_a
        viewer.add_data(cat_b)
        assert viewer.state.cube_data is cube_b
        _wait_ready(qtbot, viewer)
        assert viewer.title_label.text() == "Candidate 1"
        viewer.close(warn=False)
    finally:
        app.close()


def test_mask_update_reindexes(synth, qtbot):
    app, viewer, cube, cat = synth
    token = viewer._index_token  # noqa: SLF001
    # a new component (e.g. an arithmetic attribute) is not a new mask: no re-indexing
    cube.add_component(Component(2 * np.asarray(cube["intensity"])), "twice")
    assert viewer._index_token == token  # noqa: SLF001
    # a re-detection that swaps ids 1 and 2: the outline of candidate 1 moves
    mask = np.asarray(cube["clump_id"]).copy()
    swapped = np.where(mask == 1, 2, np.where(mask == 2, 1, mask))
    cube.update_components({cube.id["clump_id"]: swapped})
    _wait_ready(qtbot, viewer)
    assert viewer._index_token == token + 1  # noqa: SLF001
    viewer.state.current_id = 2
    viewer.state.current_id = 1
    xs, _ = viewer.vfigure.maps[0].outline.get_data()
    assert abs(np.nanmean(xs) - BLOBS[1][0]) < 3  # around blob 2 (x = 28), not blob 1


def test_label_keys_subsets_autosave_undo(synth, qtbot, home):
    app, viewer, cube, cat = synth
    dc = app.data_collection
    qtbot.keyClick(viewer, Qt.Key_Y)
    assert _labels(cat)[0] == 1
    assert viewer.state.current_id == 2  # advanced
    qtbot.keyClick(viewer, Qt.Key_N)
    qtbot.keyClick(viewer, Qt.Key_U)
    np.testing.assert_array_equal(_labels(cat), [1, 0, 2, -1])
    # the integration's subset groups follow, on the catalogue and (via the join) the cube
    clump = _group(dc, "Labelled: clump")
    not_clump = _group(dc, "Labelled: not clump")
    assert clump is not None and not_clump is not None
    np.testing.assert_array_equal(next(s for s in clump.subsets if s.data is cat).to_mask(),
                                  [True, False, False, False])
    cube_mask = next(s for s in not_clump.subsets if s.data is cube).to_mask()
    np.testing.assert_array_equal(cube_mask, np.asarray(cube["clump_id"]) == 2)
    # autosave after every label
    path = Path(viewer.state.autosave_path)
    assert path.parent == home / ".glue_ssclump"
    assert read_labels_csv(path) == {1: 1, 2: 0, 3: 2}
    # undo: label removed, autosave rewritten, back on that candidate
    qtbot.keyClick(viewer, Qt.Key_Z)
    np.testing.assert_array_equal(_labels(cat), [1, 0, -1, -1])
    assert viewer.state.current_id == 3
    assert read_labels_csv(path) == {1: 1, 2: 0}
    qtbot.keyClick(viewer, Qt.Key_Backspace)
    assert read_labels_csv(path) == {1: 1}
    assert viewer.state.current_id == 2
    assert "not labelled" in viewer.info_label.text()


def test_buttons_and_relabel(synth, qtbot):
    app, viewer, cube, cat = synth
    viewer.state.advance_after_label = False
    qtbot.mouseClick(viewer.buttons[0], Qt.LeftButton)
    assert _labels(cat)[0] == 0 and viewer.state.current_id == 1
    qtbot.mouseClick(viewer.buttons[1], Qt.LeftButton)
    assert _labels(cat)[0] == 1
    viewer.undo()
    assert _labels(cat)[0] == 0


def test_navigation_keys_and_orders(synth, qtbot):
    app, viewer, cube, cat = synth
    for key, expected in ((Qt.Key_J, 2), (Qt.Key_Right, 3), (Qt.Key_Down, 4),
                          (Qt.Key_Down, 4), (Qt.Key_K, 3), (Qt.Key_Left, 2), (Qt.Key_Up, 1),
                          (Qt.Key_End, 4), (Qt.Key_Home, 1)):
        qtbot.keyClick(viewer, key)
        assert viewer.state.current_id == expected, key
    # keys typed on the figure (after a click on it) reach the viewer too
    qtbot.keyClick(viewer.view, Qt.Key_J)
    assert viewer.state.current_id == 2
    qtbot.keyClick(viewer.view, Qt.Key_K)
    assert viewer.state.current_id == 1
    viewer.state.order = "snr"
    np.testing.assert_array_equal(viewer.navigation_ids(), [4, 2, 3, 1])
    viewer.state.order = "uncertain"  # no p_clump yet: catalogue order, and it says so
    np.testing.assert_array_equal(viewer.navigation_ids(), [1, 2, 3, 4])
    assert "no p_clump" in viewer.position_label.text()
    from glue_ssclump.integration import write_verdicts

    write_verdicts(app.data_collection, cat, p_clump=np.array(P_CLUMP))
    qtbot.waitUntil(lambda: list(viewer.navigation_ids()) == [2, 3, 4, 1], timeout=5000)
    viewer.state.order = "random"
    viewer.state.seed = 3
    first = list(viewer.navigation_ids())
    assert sorted(first) == [1, 2, 3, 4]
    viewer.state.seed = 4
    viewer.state.seed = 3
    assert list(viewer.navigation_ids()) == first
    orders = {tuple(np.random.default_rng(s).permutation(4)) for s in range(10)}
    assert len(orders) > 1  # the seed matters
    # unlabelled only: labelled candidates are skipped
    viewer.state.order = "catalogue"
    viewer.state.current_id = 1
    viewer.state.advance_after_label = False
    qtbot.keyClick(viewer, Qt.Key_Y)  # 1 labelled, stays
    viewer.state.current_id = 3
    qtbot.keyClick(viewer, Qt.Key_N)
    viewer.state.unlabelled_only = True
    np.testing.assert_array_equal(viewer.navigation_ids(), [2, 4])
    viewer.state.current_id = 2
    qtbot.keyClick(viewer, Qt.Key_J)
    assert viewer.state.current_id == 4
    qtbot.keyClick(viewer, Qt.Key_K)
    assert viewer.state.current_id == 2


def test_table_selection_changes_current_and_current_subset(synth, qtbot):
    from glue_qt.viewers.table import TableViewer

    app, viewer, cube, cat = synth
    dc = app.data_collection
    table = app.new_data_viewer(TableViewer, data=cat)
    table.toolbar.actions["table:rowselect"].toggle()
    table.ui.table.selectionModel().select(
        table.model.index(2, 0), QItemSelectionModel.ClearAndSelect | QItemSelectionModel.Rows)
    qtbot.keyClick(table, Qt.Key_Enter)
    assert viewer.state.current_id == 3
    # the current candidate is a subset group everywhere (table rows, cube voxels);
    # it is updated just after the viewer has redrawn
    qtbot.waitUntil(lambda: _group(dc, CURRENT_SUBSET_LABEL) is not None and next(
        s for s in _group(dc, CURRENT_SUBSET_LABEL).subsets if s.data is cat).to_mask()[2])
    group = _group(dc, CURRENT_SUBSET_LABEL)
    cat_mask = next(s for s in group.subsets if s.data is cat).to_mask()
    np.testing.assert_array_equal(cat_mask, [False, False, True, False])
    cube_mask = next(s for s in group.subsets if s.data is cube).to_mask()
    np.testing.assert_array_equal(cube_mask, np.asarray(cube["clump_id"]) == 3)
    # a second selection goes to the user's selection group, not to "Current candidate"
    table.ui.table.selectionModel().select(
        table.model.index(1, 0), QItemSelectionModel.ClearAndSelect | QItemSelectionModel.Rows)
    qtbot.keyClick(table, Qt.Key_Enter)
    assert viewer.state.current_id == 2
    qtbot.waitUntil(lambda: next(s for s in group.subsets if s.data is cat).to_mask()[1])
    np.testing.assert_array_equal(next(s for s in group.subsets if s.data is cat).to_mask(),
                                  [False, True, False, False])
    table.close(warn=False)


def test_click_on_cube_changes_current(synth):
    from glue.core.command import ApplySubsetState

    app, viewer, cube, cat = synth
    # what glue's image viewer pixel tool does on a click at (x=28, y=12)
    state = PixelSubsetState(cube, [slice(None), slice(12, 13), slice(28, 29)])
    app.session.command_stack.do(ApplySubsetState(data_collection=app.data_collection,
                                                  subset_state=state, override_mode=None))
    assert viewer.state.current_id == 2


def test_import_and_recovery(synth, qtbot, tmp_path):
    app, viewer, cube, cat = synth
    csv_path = tmp_path / "mine.csv"
    csv_path.write_text("clump_id,label\n2,clump\n4,0\n")
    assert viewer.import_labels(csv_path) == 2
    np.testing.assert_array_equal(_labels(cat), [-1, 1, -1, 0])
    assert read_labels_csv(viewer.state.autosave_path) == {2: 1, 4: 0}
    viewer.undo()  # an import is one undo step
    np.testing.assert_array_equal(_labels(cat), [-1, -1, -1, -1])
    bad = tmp_path / "bad.csv"
    bad.write_text("clump_id,label\n99,1\n")
    with pytest.raises(LabelsError):
        viewer.import_labels(bad)
    # crash recovery: a fresh copy of the catalogue (no labels) with the same
    # autosave path picks the autosaved labels up
    viewer.import_labels(csv_path)
    sidecar = viewer.state.autosave_path
    viewer.close(warn=False)
    cube2, cat2 = make_synthetic("synth2")
    app.data_collection.extend([cube2, cat2])
    viewer2 = app.new_data_viewer(VerificationViewer)
    viewer2.state.autosave_path = sidecar
    viewer2.add_data(cat2)
    np.testing.assert_array_equal(_labels(cat2), [-1, 1, -1, 0])
    assert "restored" in viewer2.status_label.text()
    # a sidecar that disagrees with labels already in the catalogue is kept aside
    viewer2.close(warn=False)
    with open(sidecar, "w", newline="") as fh:
        csv.writer(fh).writerows([["clump_id", "label"], [1, 2]])
    viewer3 = app.new_data_viewer(VerificationViewer)
    viewer3.state.autosave_path = sidecar
    viewer3.add_data(cat2)
    np.testing.assert_array_equal(_labels(cat2), [-1, 1, -1, 0])
    kept = [p for p in Path(sidecar).parent.iterdir() if p.name != Path(sidecar).name
            and p.name.startswith(Path(sidecar).stem)]
    assert len(kept) == 1 and read_labels_csv(kept[0]) == {1: 2}
    viewer3.close(warn=False)


def test_session_round_trip(synth, qtbot, tmp_path):
    from glue_qt.app import GlueApplication

    app, viewer, cube, cat = synth
    viewer.state.order = "snr"
    viewer.state.margin_frac = 1.0
    viewer.state.margin_min = 3
    viewer.state.current_id = 3
    viewer.state.advance_after_label = False
    qtbot.keyClick(viewer, Qt.Key_N)
    viewer.state.unlabelled_only = True
    autosave = viewer.state.autosave_path
    session = tmp_path / "verify.glu"
    app.save_session(str(session), include_data=True)
    app2 = GlueApplication.restore_session(str(session), show=False)
    try:
        viewers = [v for tab in app2.viewers for v in tab if isinstance(v, VerificationViewer)]
        assert len(viewers) == 1
        v2 = viewers[0]
        _wait_ready(qtbot, v2)
        cat2 = next(d for d in app2.data_collection if d.label == cat.label)
        cube2 = next(d for d in app2.data_collection if d.label == cube.label)
        assert v2.state.catalog_data is cat2 and v2.state.cube_data is cube2
        assert v2.state.current_id == 3
        assert v2.state.order == "snr"
        assert v2.state.margin_frac == 1.0 and v2.state.margin_min == 3
        assert v2.state.unlabelled_only is True
        assert v2.state.autosave_path == autosave
        np.testing.assert_array_equal(_labels(cat2), [-1, -1, 0, -1])
        assert "not clump" in v2.info_label.text()
        qtbot.keyClick(v2, Qt.Key_Y)
        np.testing.assert_array_equal(_labels(cat2), [-1, -1, 1, -1])
        assert read_labels_csv(autosave) == {3: 1}
    finally:
        app2.close()


def test_state_options_widget_autoconnected(synth):
    app, viewer, cube, cat = synth
    ui = viewer.options_widget().ui
    ui.combosel_order.setCurrentIndex(2)
    assert viewer.state.order == "snr"
    ui.bool_unlabelled_only.setChecked(True)
    assert viewer.state.unlabelled_only is True
    viewer.state.margin_min = 7
    assert ui.value_margin_min.value() == 7
    ui.text_autosave_path.setText("/tmp/x.csv")
    ui.text_autosave_path.editingFinished.emit()
    assert viewer.state.autosave_path == "/tmp/x.csv"
    assert ui.combosel_catalog_data.currentText() == cat.label


# -- navigation through a given list of ids ------------------------------------------------

def test_set_navigation_ids(synth, qtbot):
    app, viewer, cube, cat = synth
    viewer.state.order = "snr"
    viewer.set_navigation_ids([3, 1, 4])
    assert viewer.state.current_id == 3  # the first one is shown
    assert viewer.state.order == "list" and viewer.state.navigation_ids == [3, 1, 4]
    np.testing.assert_array_equal(viewer.navigation_ids(), [3, 1, 4])
    assert viewer.position_label.text().startswith("1 of 3 (given list of ids")
    for key, expected in ((Qt.Key_J, 1), (Qt.Key_Right, 4), (Qt.Key_J, 4), (Qt.Key_K, 1),
                          (Qt.Key_Home, 3), (Qt.Key_End, 4), (Qt.Key_Up, 1)):
        qtbot.keyClick(viewer, key)
        assert viewer.state.current_id == expected, key
    assert viewer.next_candidate() and viewer.state.current_id == 4
    assert not viewer.next_candidate()  # end of the list, not on to candidate 2
    assert "end of the list" in viewer.status_label.text()
    # labelling moves along the list; "unlabelled only" skips labelled ones of it
    viewer.state.current_id = 3
    qtbot.keyClick(viewer, Qt.Key_Y)
    assert viewer.state.current_id == 1
    viewer.state.unlabelled_only = True
    np.testing.assert_array_equal(viewer.navigation_ids(), [1, 4])
    viewer.state.unlabelled_only = False
    # a candidate outside the list (go to id, a selection) is "not among" it; next -> first
    viewer.state.current_id = 2
    assert "not among the 3" in viewer.position_label.text()
    qtbot.keyClick(viewer, Qt.Key_J)
    assert viewer.state.current_id == 3
    # another order from the options panel, then the list again
    viewer.state.order = "catalogue"
    np.testing.assert_array_equal(viewer.navigation_ids(), [1, 2, 3, 4])
    viewer.state.order = "list"
    np.testing.assert_array_equal(viewer.navigation_ids(), [3, 1, 4])
    # None restores the order used before the list
    viewer.set_navigation_ids(None)
    assert viewer.state.order == "snr" and viewer.state.navigation_ids is None
    np.testing.assert_array_equal(viewer.navigation_ids(), [4, 2, 3, 1])
    # numpy arrays work too, and the current candidate follows the new list
    viewer.set_navigation_ids(np.array([2, 4], dtype=np.int32))
    assert viewer.state.current_id == 2
    np.testing.assert_array_equal(viewer.navigation_ids(), [2, 4])
    # "list" chosen in the panel without a list: catalogue order, and it says so
    viewer.set_navigation_ids(None)
    viewer.state.order = "list"
    np.testing.assert_array_equal(viewer.navigation_ids(), [1, 2, 3, 4])
    assert "no list of ids given" in viewer.position_label.text()


def test_set_navigation_ids_rejects_bad_lists(synth):
    app, viewer, cube, cat = synth
    viewer.set_navigation_ids([2, 3])
    for bad, match in (([], "empty"), ([1, 99, 100], r"2 clump id\(s\) not in the catalogue "
                                                     r"'synth candidates': 99, 100"),
                       ([1, 2, 1], "more than once: 1"), ([1.5, 2], "integer"),
                       (["1"], "integer"), (np.array([[1, 2]]), "flat list")):
        with pytest.raises(ValueError, match=match):
            viewer.set_navigation_ids(bad)
        # nothing changed
        assert viewer.state.navigation_ids == [2, 3] and viewer.state.current_id == 2
    viewer.state.catalog_data = None
    with pytest.raises(ValueError, match="no candidate catalogue"):
        viewer.set_navigation_ids([1])


def test_navigation_ids_saved_with_the_session(synth, qtbot, tmp_path):
    from glue_qt.app import GlueApplication

    app, viewer, cube, cat = synth
    viewer.set_navigation_ids([4, 2])
    session = tmp_path / "list.glu"
    app.save_session(str(session), include_data=True)
    app2 = GlueApplication.restore_session(str(session), show=False)
    try:
        v2 = next(v for tab in app2.viewers for v in tab if isinstance(v, VerificationViewer))
        _wait_ready(qtbot, v2)
        assert v2.state.order == "list" and v2.state.navigation_ids == [4, 2]
        assert v2.state.current_id == 4
        np.testing.assert_array_equal(v2.navigation_ids(), [4, 2])
        qtbot.keyClick(v2, Qt.Key_J)
        assert v2.state.current_id == 2
    finally:
        app2.close()


# -- closing while the background threads work --------------------------------------------

def _delete_now(widget) -> None:
    """Destroy a widget's C++ object at once, as when its application is torn down."""
    try:
        from qtpy import sip
    except ImportError:  # PySide
        from qtpy import shiboken as sip
    sip.delete(widget)


@pytest.fixture
def busy_index(monkeypatch):
    """Index builds wait until the event returned is set: the index thread stays busy."""
    release = threading.Event()
    build = CandidateIndex.build

    def slow_build(cls, mask):
        release.wait(30)
        time.sleep(0.3)  # still running when the viewer closes
        return build(mask)

    monkeypatch.setattr(CandidateIndex, "build", classmethod(slow_build))
    yield release
    release.set()


@contextmanager
def _indexing_viewer(qtbot):
    """A verification viewer whose index thread is busy (with ``busy_index``): yields
    ``(viewer, index thread, renderer)``; after the block, waits 300 ms for late
    signals and checks that no exception reached Qt."""
    cube, cat = make_synthetic()
    app = _app(cube, cat)
    try:
        with qtbot.capture_exceptions() as exceptions:
            viewer = app.new_data_viewer(VerificationViewer, data=cat)
            yield viewer, viewer._threads[-1], viewer._renderer  # noqa: SLF001
            qtbot.wait(300)
        assert exceptions == []
    finally:
        app.close()


def test_close_while_indexing_joins_the_thread(qtbot, home, busy_index):
    with _indexing_viewer(qtbot) as (viewer, thread, renderer):
        assert thread.isRunning() and not viewer.is_ready
        busy_index.set()
        viewer.close(warn=False)
        assert thread.isFinished() and not renderer.is_alive  # stopped and joined
        # The widgets go right away; what the thread sent before it ended arrives
        # after that and is dropped.  (This raised "wrapped C/C++ object of type
        # _IndexThread has been deleted".)
        _delete_now(viewer)


def test_widgets_destroyed_while_indexing(qtbot, home, busy_index):
    """No close at all: the index thread outlives the viewer and ends on its own.

    It used to be a Qt child of the viewer and was destroyed while running, which
    aborts the process ("QThread: Destroyed while thread is still running").
    """
    with _indexing_viewer(qtbot) as (viewer, thread, renderer):
        assert thread.isRunning()
        _delete_now(viewer)
        assert not renderer.is_alive  # stopped by the viewer's destroyed signal
        busy_index.set()
        qtbot.waitUntil(thread.isFinished, timeout=30000)


def test_close_while_rendering_stops_the_render_thread(synth, qtbot, monkeypatch):
    app, viewer, cube, cat = synth
    qtbot.waitUntil(lambda: _rendering_done(viewer), timeout=60000)
    views = render_module.candidate_views

    def slow_views(*args, **kwargs):
        time.sleep(0.5)
        return views(*args, **kwargs)

    monkeypatch.setattr(render_module, "candidate_views", slow_views)
    renderer = viewer._renderer  # noqa: SLF001
    with qtbot.capture_exceptions() as exceptions:
        viewer.state.margin_min = 9  # a new figure to render
        qtbot.waitUntil(lambda: bool(renderer.pending()), timeout=5000)
        viewer.close(warn=False)
        assert not renderer.is_alive
        _delete_now(viewer)
        qtbot.wait(300)
    assert exceptions == []


# -- rendering: the two drawing methods, and what waits for the figure --------------------


def _current_ids(dc, cat) -> list[int]:
    group = _group(dc, CURRENT_SUBSET_LABEL)
    if group is None:
        return []
    mask = next(s for s in group.subsets if s.data is cat).to_mask()
    return [int(i) for i in np.asarray(cat["clump_id"])[mask]]


def _as_array(image) -> np.ndarray:
    from qtpy.QtGui import QImage

    image = image.convertToFormat(QImage.Format_RGBA8888)
    w, h = image.width(), image.height()
    ptr = image.constBits()
    ptr.setsize(image.sizeInBytes())
    rows = np.frombuffer(ptr, np.uint8).reshape(h, image.bytesPerLine())
    return rows[:, :4 * w].reshape(h, w, 4)[..., :3].astype(int)


def test_render_methods_show_the_same_figure(synth, qtbot):
    app, viewer, cube, cat = synth
    renderer = viewer._renderer  # noqa: SLF001
    images = {}
    for fast in (True, False):
        viewer.state.current_id = 1
        qtbot.waitUntil(lambda: _rendering_done(viewer), timeout=60000)
        renderer.fast = fast
        viewer._cache.clear()  # noqa: SLF001
        viewer.state.current_id = 2  # drawn now, by this method
        qtbot.waitUntil(lambda: viewer.display_is_current, timeout=60000)
        images[fast] = _as_array(viewer.view._image)  # noqa: SLF001
    a, b = images[True], images[False]
    assert a.shape == b.shape and a.shape[1] >= 480
    assert (np.abs(a - b).max(axis=2) > 64).mean() < 0.02
    assert (a < 128).any(axis=2).mean() > 0.02


def test_current_group_follows_the_figure(synth, qtbot, monkeypatch):
    """A candidate that was not prefetched: glue's "Current candidate" update waits
    until its figure is on screen (it would hold the GIL while the render thread
    draws), then follows at once."""
    from qtpy.QtWidgets import QApplication

    from glue_ssclump.qt.viewer import presenter as viewer_module

    app, viewer, cube, cat = synth
    dc = app.data_collection
    monkeypatch.setattr(viewer_module, "_GROUP_UPDATE_BACKSTOP_MS", 600_000)
    qtbot.waitUntil(lambda: _rendering_done(viewer) and _current_ids(dc, cat) == [1],
                    timeout=60000)
    release = threading.Event()
    views = render_module.candidate_views

    def held_views(*args, **kwargs):
        release.wait(30)
        return views(*args, **kwargs)

    monkeypatch.setattr(render_module, "candidate_views", held_views)
    viewer._cache.clear()  # noqa: SLF001
    try:
        viewer.state.current_id = 3
        assert not viewer.display_is_current
        for _ in range(5):
            QApplication.processEvents()
        assert _current_ids(dc, cat) == [1]  # not yet: the figure is being drawn
    finally:
        release.set()
    qtbot.waitUntil(lambda: viewer.display_is_current, timeout=60000)
    qtbot.waitUntil(lambda: _current_ids(dc, cat) == [3], timeout=5000)
    # a prefetched candidate: shown at once, and the group follows right away
    qtbot.waitUntil(lambda: _rendering_done(viewer), timeout=60000)
    viewer.next_candidate()
    assert viewer.display_is_current
    qtbot.waitUntil(lambda: _current_ids(dc, cat) == [4], timeout=5000)


# -- real data: L1448 13CO -------------------------------------------------------------


@pytest.fixture(scope="module")
def l1448_detection():
    from glue_ssclump.core.cube import read_cube
    from glue_ssclump.integration import compute_candidates

    path = Path(__file__).parent.parent / "glue_ssclump" / "data" / "l1448_13co.fits"
    cube = read_cube(path)
    mask, table = compute_candidates(cube, "clumpfind")
    return cube, mask, table


@pytest.fixture
def l1448(qtbot, home, l1448_detection):
    from glue_ssclump.integration import make_catalog_data, make_cube_data

    ppv, mask, table = l1448_detection
    cube = make_cube_data(ppv, mask, "l1448_13co")
    cat = make_catalog_data(table, "l1448_13co candidates (clumpfind)")
    cube.join_on_key(cat, "clump_id", "clump_id")
    app = _app(cube, cat)
    viewer = app.new_data_viewer(VerificationViewer, data=cube)
    _wait_ready(qtbot, viewer)
    yield app, viewer, cube, cat
    viewer.close(warn=False)
    app.close()


def _show_biggest(viewer, cat, rank: int = 0) -> int:
    npix = np.asarray(cat["npix"])
    cid = int(np.asarray(cat["clump_id"])[np.argsort(-npix, kind="stable")[rank]])
    viewer.state.current_id = cid
    return cid


def _wait_drawn(qtbot, viewer) -> None:
    qtbot.waitUntil(lambda: viewer.display_is_current, timeout=60000)


def _save_screenshot(viewer, qtbot, name: str, tmp_path: Path) -> Path:
    viewer.viewer_size = (1280, 720)
    viewer.grab()  # lays the (hidden) window out at its new size
    qtbot.wait(200)  # the resize is debounced, then the figure re-rendered
    _wait_drawn(qtbot, viewer)
    assert viewer.view.width() > 900
    out = tmp_path / name
    assert viewer.grab().save(str(out))
    target = os.environ.get("GLUE_SSCLUMP_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(out, Path(target) / name)
    return out


def test_l1448_display_label_and_screenshot(l1448, qtbot, tmp_path):
    app, viewer, cube, cat = l1448
    assert viewer.state.catalog_data is cat  # found from the cube through the join
    cid = _show_biggest(viewer, cat)
    lb = viewer.vfigure.maps[0]
    assert lb.ax.coords[0].get_axislabel() == "RA"
    assert lb.ax.coords[1].get_axislabel() == "Dec"
    xs, _ = lb.outline.get_data()
    assert np.isfinite(xs).sum() > 20
    image = lb.image.get_array()
    assert image.shape[0] > 10 and np.nanmax(image) > 0
    assert f"Candidate {cid}" == viewer.title_label.text()
    shot = _save_screenshot(viewer, qtbot, "viewer_l1448.png", tmp_path)
    from qtpy.QtGui import QImage

    img = QImage(str(shot))
    assert img.width() >= 1200 and img.height() >= 600
    # label with the keyboard on real data
    viewer.state.advance_after_label = False
    qtbot.keyClick(viewer, Qt.Key_Y)
    row = int(np.flatnonzero(np.asarray(cat["clump_id"]) == cid)[0])
    assert np.asarray(cat["label"])[row] == 1
    assert read_labels_csv(viewer.state.autosave_path) == {cid: 1}
    _show_biggest(viewer, cat, rank=3)
    qtbot.keyClick(viewer, Qt.Key_N)
    _save_screenshot(viewer, qtbot, "viewer_l1448_second.png", tmp_path)
    group = _group(app.data_collection, "Labelled: not clump")
    assert next(s for s in group.subsets if s.data is cat).to_mask().sum() == 1


def test_l1448_every_candidate_renders(l1448, l1448_detection):
    app, viewer, cube, cat = l1448
    _, mask, _ = l1448_detection
    # every candidate's cut-out: footprints match the mask, spectra are finite
    index = CandidateIndex.build(mask)
    ids = np.asarray(cat["clump_id"])
    assert set(index.boxes) == set(ids.tolist())
    values = np.asarray(cube["intensity"])
    for cid in ids:
        v = candidate_views(values, mask, int(cid), index.boxes[int(cid)])
        assert v.foot_lb.sum() == (mask[v.crop] == cid).any(0).sum() > 0
        assert np.isfinite(v.peak_spectrum).all()
    # and the viewer steps through a stretch of them, each drawn
    viewer.state.order = "random"
    seen = set()
    for _ in range(40):
        assert viewer.next_candidate()
        seen.add(viewer.state.current_id)
        assert viewer.vfigure.maps[0].ax.get_visible()
        assert np.isfinite(viewer.vfigure.maps[0].outline.get_data()[0]).any()
    assert len(seen) == 40
    viewer.canvas.draw()


def test_l1448_in_the_glue_application(l1448, qtbot, tmp_path):
    """The verification viewer next to glue's table and image viewers: the current
    candidate and the labels are subsets that those viewers show."""
    from glue_qt.viewers.image import ImageViewer
    from glue_qt.viewers.table import TableViewer

    app, viewer, cube, cat = l1448
    dc = app.data_collection
    image = app.new_data_viewer(ImageViewer, data=cube)
    table = app.new_data_viewer(TableViewer, data=cat)
    viewer.state.advance_after_label = True
    cid = _show_biggest(viewer, cat, rank=1)
    for key in (Qt.Key_Y, Qt.Key_N, Qt.Key_Y):
        qtbot.keyClick(viewer, key)
    viewer.state.current_id = cid
    qtbot.waitUntil(lambda: next(s for s in _group(dc, CURRENT_SUBSET_LABEL).subsets
                                 if s.data is cat).to_mask().sum() == 1)
    row = int(np.flatnonzero(np.asarray(cat["clump_id"]) == cid)[0])
    peak_z = int(np.asarray(cat["peak_z"])[row])
    image.state.slices = (peak_z, 0, 0)
    labelled = {g.label for g in dc.subset_groups}
    assert {CURRENT_SUBSET_LABEL, "Labelled: clump", "Labelled: not clump"} <= labelled
    # the image viewer shows the current candidate's voxels on this channel
    layer = next(la for la in image.layers if getattr(la.layer, "group", None) is not None
                 and la.layer.group.label == CURRENT_SUBSET_LABEL)
    mask = layer.layer.to_mask(view=(peak_z, slice(None), slice(None)))
    np.testing.assert_array_equal(mask, np.asarray(cube["clump_id"])[peak_z] == cid)
    assert mask.any()
    app.resize(1960, 1000)
    app.show()
    image.viewer_size = (520, 470)
    image.position = (0, 0)
    table.viewer_size = (520, 420)
    table.position = (0, 475)
    viewer.viewer_size = (920, 700)
    viewer.position = (525, 0)
    # the verification viewer active: its options panel (.ui) is the one shown
    app.current_tab.setActiveSubWindow(viewer.parent())
    qtbot.wait(300)
    _wait_drawn(qtbot, viewer)
    image.figure.canvas.draw()
    out = tmp_path / "glue_app_l1448.png"
    assert app.grab().save(str(out))
    target = os.environ.get("GLUE_SSCLUMP_SCREENSHOT_DIR")
    if target:
        shutil.copy(out, Path(target) / out.name)
    image.close(warn=False)
    table.close(warn=False)
