"""glue sessions with glue-ssclump datasets, in glue-qt's GlueApplication (offscreen).

The cube + catalogue come from the data factory through ``load_data`` and are added
with ``GlueApplication.add_datasets`` (what File > Open Data does), so the registered
auto-linker adds the links; verdicts, labels and a row selection are then written and
the session is saved with and without data and restored.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from astropy.wcs import WCS
from glue.core.component_link import ComponentLink
from glue.core.data_factories import load_data
from glue.core.link_helpers import JoinLink

from glue_ssclump.integration import (
    load_ppv_candidates,
    load_session,
    register_all,
    save_session,
    select_candidates,
    write_verdicts,
)
from glue_ssclump.integration.writeback import GROUP_CLUMPS, GROUP_LABELLED_CLUMP

pytestmark = pytest.mark.xdist_group("glue_l1448_session")

GROUPS = ("Selected candidates", "SS-3D-Clump: clumps", "SS-3D-Clump: rejected",
          "SS-3D-Clump: uncertain", "Labelled: clump", "Labelled: not clump")


def _raise(message, detail):
    raise AssertionError(f"{message}\n{detail}")


@pytest.fixture(scope="module")
def session_app(l1448_path):
    from glue_qt.app import GlueApplication

    register_all()
    app = GlueApplication()
    app.report_error = _raise  # GlueApplication would show a modal dialog instead
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube_data, catalog_data = load_data(str(l1448_path), factory=load_ppv_candidates)
    app.add_datasets([cube_data, catalog_data])
    n = catalog_data.size
    rng = np.random.default_rng(3)
    p = rng.random(n)
    verdict = np.where(p > 0.6, "clump", np.where(p < 0.2, "rejected", "uncertain"))
    label = rng.choice([-1, 0, 1, 2], n)
    write_verdicts(app.data_collection, catalog_data, p_clump=p, verdict=verdict, label=label)
    select_candidates(app.data_collection, catalog_data, [2, 7, 11, 40])
    yield app, cube_data, catalog_data
    app.close()


def test_autolinker_linked_the_pair_on_add(session_app):
    app, cube_data, catalog_data = session_app
    links = list(app.data_collection.external_links)
    assert sum(isinstance(lk, JoinLink) for lk in links) == 1
    targets = {lk.get_to_id() for lk in links if isinstance(lk, ComponentLink)}
    assert targets == set(cube_data.world_component_ids)


def test_open_data_dialog_offers_the_factory(session_app):
    """File > Open Data lists the factory, and its file-type entry maps back to it."""
    from glue_qt.dialogs.data_wizard.data_wizard_dialog import GlueDataDialog

    dialog = GlueDataDialog()
    names = [flt for fac, flt in dialog.filters if fac.function is load_ppv_candidates]
    assert names == ["PPV cube + clump candidates (glue-ssclump) (*)"]
    dialog._fd.selectNameFilter(names[0])
    assert dialog.factory().function is load_ppv_candidates


def _check_restored(dc, cube_data, catalog_data):
    cube2 = next(d for d in dc if d.label == cube_data.label)
    cat2 = next(d for d in dc if d.label == catalog_data.label)
    assert [c.label for c in cube2.components] == [c.label for c in cube_data.components]
    assert [c.label for c in cat2.components] == [c.label for c in catalog_data.components]
    np.testing.assert_array_equal(cube2["clump_id"], cube_data["clump_id"])
    np.testing.assert_array_equal(cube2["intensity"], cube_data["intensity"])
    for name in ("clump_id", "peak_vel", "p_clump", "label"):
        np.testing.assert_array_equal(cat2[name], catalog_data[name])
    np.testing.assert_array_equal(cat2.get_component("verdict").labels,
                                  catalog_data.get_component("verdict").labels)
    for cid in catalog_data.main_components:
        assert cat2.get_component(cid.label).units == catalog_data.get_component(cid).units
    assert isinstance(cube2.coords, WCS)
    w1, w2 = cube_data.coords, cube2.coords
    np.testing.assert_allclose(w2.pixel_to_world_values(3, 4, 5), w1.pixel_to_world_values(3, 4, 5))
    assert cat2.meta["ssclump_cube_uuid"] == cube2.uuid

    links = list(dc.external_links)
    joins = [lk for lk in links if isinstance(lk, JoinLink)]
    assert len(joins) == 1 and joins[0].data1 is cube2 and joins[0].data2 is cat2
    assert cat2 in cube2._key_joins
    assert len(links) == 4
    # the catalogue still computes the cube's pixel coordinates through the links
    np.testing.assert_allclose(cat2[cube2.pixel_component_ids[2]], cat2["peak_x"], atol=1e-6)

    assert sorted(g.label for g in dc.subset_groups) == sorted(GROUPS)
    mask = np.asarray(cube2["clump_id"])
    for group in dc.subset_groups:
        original = next(s.group for s in catalog_data.subsets if s.group.label == group.label)
        by_data = {s.data: s for s in group.subsets}
        ref = {s.data: s for s in original.subsets}
        np.testing.assert_array_equal(by_data[cat2].to_mask(), ref[catalog_data].to_mask())
        rows = by_data[cat2].to_mask()
        np.testing.assert_array_equal(by_data[cube2].to_mask(),
                                      np.isin(mask, np.asarray(cat2["clump_id"])[rows]))
    # write-back still updates the restored groups in place
    write_verdicts(dc, cat2, label=np.ones(cat2.size, int))
    assert len([g for g in dc.subset_groups if g.label == GROUP_LABELLED_CLUMP]) == 1
    group = next(g for g in dc.subset_groups if g.label == GROUP_LABELLED_CLUMP)
    assert next(s for s in group.subsets if s.data is cube2).to_mask().sum() == (mask > 0).sum()
    assert len(cat2.components) == len(catalog_data.components)
    return cube2, cat2


def test_session_round_trip_with_data(session_app, tmp_path):
    from glue_qt.app import GlueApplication

    app, cube_data, catalog_data = session_app
    path = tmp_path / "with_data.glu"
    app.save_session(str(path), include_data=True)
    text = path.read_text()
    assert "load_ppv_candidates" not in text  # every component stored with its values
    app2 = GlueApplication.restore_session(str(path), show=False)
    try:
        _check_restored(app2.data_collection, cube_data, catalog_data)
        assert any(g.label == GROUP_CLUMPS for g in app2.data_collection.subset_groups)
    finally:
        app2.close()


def test_session_round_trip_without_data_reruns_factory(session_app, tmp_path):
    from glue_qt.app import GlueApplication

    app, cube_data, catalog_data = session_app
    path = tmp_path / "no_data.glu"
    app.save_session(str(path), include_data=False)
    state = json.loads(path.read_text())
    logs = [v for v in state.values() if v.get("_type", "").endswith("LoadLog")]
    assert len(logs) == 1
    assert logs[0]["factory"]["function"] == (
        "glue_ssclump.integration.factory.load_ppv_candidates")
    # the factory-made arrays are not in the file, the written-back columns are
    assert len(path.read_text()) < 0.5 * cube_data.size
    app2 = GlueApplication.restore_session(str(path), show=False)
    try:
        _check_restored(app2.data_collection, cube_data, catalog_data)
    finally:
        app2.close()


def test_plain_data_collection_session_helpers(session_app, tmp_path):
    """save_session / load_session for scripts (a bare DataCollection, no application)."""
    from glue.core import DataCollection

    app, cube_data, catalog_data = session_app
    path = save_session(app.data_collection, tmp_path / "dc.glu", include_data=True)
    restored = load_session(path)
    assert isinstance(restored, DataCollection)
    _check_restored(restored, cube_data, catalog_data)


def test_catalogue_overlays_in_image_viewer(session_app):
    """Through the coordinate links the catalogue is a scatter layer on the cube image."""
    from glue_qt.viewers.image import ImageViewer

    app, cube_data, catalog_data = session_app
    viewer = app.new_data_viewer(ImageViewer, data=cube_data)
    try:
        viewer.add_data(catalog_data)
        layer = next(la for la in viewer.layers if la.layer is catalog_data)
        assert layer.enabled
        x, y = layer.plot_artist.get_data()
        np.testing.assert_allclose(x, catalog_data["peak_x"], atol=1e-6)
        np.testing.assert_allclose(y, catalog_data["peak_y"], atol=1e-6)
    finally:
        viewer.close(warn=False)
