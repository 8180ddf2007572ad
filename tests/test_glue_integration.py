"""glue-core integration on the real L1448 cube: factory, links, brushing, write-back,
exporters, detection on a cube already loaded.

ClumpFind runs once per module (module-scoped fixture); every test then builds a fresh
cube / catalogue pair from the cached arrays, so tests do not share glue state.
"""

from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from glue.core import DataCollection
from glue.core.data_factories import find_factory, load_data
from glue.core.link_helpers import JoinLink
from glue.core.roi import RectangularROI
from glue.core.subset import (
    ElementSubsetState,
    RangeSubsetState,
    RoiSubsetState,
)

from glue_ssclump.core.catalog import read_catalog
from glue_ssclump.core.labels import LABEL_COLOURS, read_labels_csv
from glue_ssclump.core.progress import Cancelled, Progress
from glue_ssclump.integration import (
    catalog_data_for,
    cube_data_for,
    detect_in_data,
    export_catalog,
    export_labels_csv,
    export_mask_cube,
    link_candidates,
    load_ppv_candidates,
    make_catalog_data,
    make_cube_data,
    select_candidates,
    select_candidates_in_region,
    use_progress,
    write_verdicts,
)
from glue_ssclump.integration.exporters import GLUE_EXPORTERS, catalog_table
from glue_ssclump.integration.links import copy_value, kms_to_ms
from glue_ssclump.integration.writeback import (
    GROUP_CLUMPS,
    GROUP_LABELLED_CLUMP,
    GROUP_LABELLED_NOT_CLUMP,
    GROUP_REJECTED,
    GROUP_UNCERTAIN,
)

pytestmark = pytest.mark.xdist_group("glue_l1448")

VERDICT_GROUPS = (GROUP_CLUMPS, GROUP_REJECTED, GROUP_UNCERTAIN)
LABEL_GROUPS = (GROUP_LABELLED_CLUMP, GROUP_LABELLED_NOT_CLUMP)


@pytest.fixture(scope="module")
def loaded(l1448_path):
    """The factory run once through glue's load_data (ClumpFind, estimated rms)."""
    reports: list[tuple[float, str]] = []
    progress = Progress(lambda fraction, message: reports.append((fraction, message)),
                        min_interval=0.0)
    with warnings.catch_warnings(), use_progress(progress):
        warnings.simplefilter("ignore")
        cube_data, catalog_data = load_data(str(l1448_path), factory=load_ppv_candidates)
    return cube_data, catalog_data, catalog_table(catalog_data), reports


@pytest.fixture
def pair(loaded, l1448_cube):
    """A fresh, linked (cube, catalogue, data collection) built from the cached run."""
    cube_src, _, table, _ = loaded
    cube_data = make_cube_data(l1448_cube, np.asarray(cube_src["clump_id"]), "cube")
    catalog_data = make_catalog_data(table, "catalogue")
    dc = DataCollection([cube_data, catalog_data])
    link_candidates(dc, cube_data, catalog_data)
    return cube_data, catalog_data, dc


# -- factory ----------------------------------------------------------------------------


def test_factory_returns_cube_and_catalogue_on_one_grid(loaded, l1448_cube):
    cube_data, catalog_data, _, _ = loaded
    mask = np.asarray(cube_data["clump_id"])
    assert cube_data.shape == l1448_cube.shape == mask.shape
    assert mask.dtype == np.int32
    np.testing.assert_array_equal(cube_data["intensity"], l1448_cube.data)
    assert cube_data.get_component("intensity").units == "K"
    # One dataset with glue WCS coordinates: world components for the 3 axes.
    assert isinstance(cube_data.coords, WCS)
    world = [c.label for c in cube_data.world_component_ids]
    assert world == ["Vopt", "Declination", "Right Ascension"]
    vel = cube_data[cube_data.world_component_ids[0]][:, 0, 0]
    np.testing.assert_allclose(vel / 1000.0, l1448_cube.velocity, rtol=0, atol=1e-9)

    ids = np.unique(mask)
    n = int(ids.max())
    np.testing.assert_array_equal(ids, np.arange(0, n + 1))
    assert catalog_data.shape == (n,)
    np.testing.assert_array_equal(catalog_data["clump_id"], np.arange(1, n + 1))
    units = {c.label: catalog_data.get_component(c).units for c in catalog_data.main_components}
    assert units["peak_lon"] == "deg" and units["peak_vel"] == "km / s"
    assert units["flux"] == "K" and units["size_lon"] == "arcsec"
    assert catalog_data.get_kind("detector") == "categorical"
    # The paper's ClumpFind settings at the estimated rms.
    assert catalog_data.meta["ssclump_detector"] == "clumpfind"
    assert catalog_data.meta["ssclump_rms"] == pytest.approx(0.1224, abs=5e-4)
    # joined on clump_id at the Data level (works without a data collection)
    assert cube_data_for(catalog_data) is cube_data
    assert catalog_data_for(cube_data) is catalog_data
    # npix column agrees with the mask
    np.testing.assert_array_equal(catalog_data["npix"], np.bincount(mask.ravel())[1:])


def test_factory_progress_and_cancel(loaded, l1448_path):
    reports = loaded[3]
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("clumpfind" in m for _, m in reports)
    assert any("catalogue" in m for _, m in reports)
    progress = Progress()
    progress.cancel()
    with use_progress(progress), pytest.raises(Cancelled):
        load_ppv_candidates(str(l1448_path))


def test_factory_never_chosen_automatically(l1448_path):
    factory = find_factory(str(l1448_path))
    assert factory is not None and factory is not load_ppv_candidates
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = load_data(str(l1448_path))
    assert not isinstance(plain, list)
    assert [c.label for c in plain.main_components] == ["PRIMARY"]


def test_factory_reports_missing_detector(l1448_path):
    from glue_ssclump.core.detectors import DetectorError

    with pytest.raises(DetectorError, match="not available.*installed detectors"):
        load_ppv_candidates(str(l1448_path), method="no-such-detector")


# -- links ------------------------------------------------------------------------------


def test_links_in_collection_and_link_editor(pair):
    from glue.dialogs.link_editor.state import LinkEditorState

    cube_data, catalog_data, dc = pair
    links = list(dc.external_links)
    joins = [lk for lk in links if isinstance(lk, JoinLink)]
    assert len(joins) == 1
    assert joins[0].cids1[0] is cube_data.id["clump_id"]
    assert joins[0].cids2[0] is catalog_data.id["clump_id"]
    world = {lk.get_to_id(): lk for lk in links if not isinstance(lk, JoinLink)}
    vel, lat, lon = cube_data.world_component_ids
    assert world[lon].get_from_ids() == [catalog_data.id["peak_lon"]]
    assert world[lat].get_from_ids() == [catalog_data.id["peak_lat"]]
    assert world[vel].get_from_ids() == [catalog_data.id["peak_vel"]]
    assert world[lon].get_using() is copy_value and world[vel].get_using() is kms_to_ms
    # idempotent
    assert link_candidates(dc, cube_data, catalog_data) == []
    assert len(dc.external_links) == 4

    # The catalogue computes the cube's pixel coordinates (overlay in image viewers)...
    z, y, x = (np.asarray(catalog_data[c]) for c in cube_data.pixel_component_ids)
    np.testing.assert_allclose(x, catalog_data["peak_x"], atol=1e-6)
    np.testing.assert_allclose(y, catalog_data["peak_y"], atol=1e-6)
    np.testing.assert_allclose(z, catalog_data["peak_z"], atol=1e-6)
    # ...but the links are one-way: the cube cannot compute catalogue columns.
    from glue.core.exceptions import IncompatibleAttribute

    with pytest.raises(IncompatibleAttribute):
        cube_data.get_data(catalog_data.id["peak_vel"])

    # glue's link editor state lists the join and can remove it (and the join goes).
    state = LinkEditorState(dc)
    state.data1, state.data2 = cube_data, catalog_data
    kinds = sorted(link.link_type for link in state.visible_links)
    assert kinds == ["join", "value", "value", "value"]
    state.current_link = next(lk for lk in state.visible_links if lk.link_type == "join")
    state.remove_link()
    state.update_links_in_collection()
    assert not any(isinstance(lk, JoinLink) for lk in dc.external_links)
    assert catalog_data not in cube_data._key_joins
    assert len(dc.external_links) == 3


# -- linked brushing ----------------------------------------------------------------------


def test_catalogue_rows_select_exactly_their_voxels(pair):
    cube_data, catalog_data, dc = pair
    mask = np.asarray(cube_data["clump_id"])
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(catalog_data.size, 40, replace=False))
    ids = np.asarray(catalog_data["clump_id"])[rows]
    # what glue's table viewer makes for a row selection
    group = dc.new_subset_group("rows", ElementSubsetState(indices=rows, data=catalog_data))
    cube_subset = next(s for s in group.subsets if s.data is cube_data)
    expected = np.isin(mask, ids)
    assert expected.sum() > 0
    np.testing.assert_array_equal(cube_subset.to_mask(), expected)
    k = int(np.argmax(expected.sum(axis=(1, 2))))
    view = (k, slice(None), slice(None))
    np.testing.assert_array_equal(cube_subset.to_mask(view=view), expected[k])

    # a selection on a catalogue column also goes through the join (one-way links)
    vel = np.asarray(catalog_data["peak_vel"])
    group2 = dc.new_subset_group("fast", RangeSubsetState(4.0, 4.5, catalog_data.id["peak_vel"]))
    cube2 = next(s for s in group2.subsets if s.data is cube_data)
    sel_ids = np.asarray(catalog_data["clump_id"])[(vel >= 4.0) & (vel <= 4.5)]
    assert 0 < sel_ids.size < catalog_data.size
    np.testing.assert_array_equal(cube2.to_mask(), np.isin(mask, sel_ids))

    # the helper does the same from ids
    group3 = select_candidates(dc, catalog_data, ids[:5], label="five")
    cube3 = next(s for s in group3.subsets if s.data is cube_data)
    np.testing.assert_array_equal(cube3.to_mask(), np.isin(mask, ids[:5]))
    assert select_candidates(dc, catalog_data, ids[:2], label="five") is group3
    np.testing.assert_array_equal(cube3.to_mask(), np.isin(mask, ids[:2]))


def test_cube_region_selects_touched_rows(pair):
    cube_data, catalog_data, dc = pair
    mask = np.asarray(cube_data["clump_id"])
    z_pix, y_pix, x_pix = cube_data.pixel_component_ids
    roi = RectangularROI(xmin=30.5, xmax=45.5, ymin=50.5, ymax=62.5)
    region = RoiSubsetState(x_pix, y_pix, roi)
    k = 26
    touched = np.unique(mask[k, 51:63, 31:46])
    touched = touched[touched > 0]
    assert touched.size > 3

    group = select_candidates_in_region(dc, cube_data, catalog_data, region, slice_index=k)
    cat_subset = next(s for s in group.subsets if s.data is catalog_data)
    np.testing.assert_array_equal(
        cat_subset.to_mask(), np.isin(catalog_data["clump_id"], touched))
    cube_subset = next(s for s in group.subsets if s.data is cube_data)
    np.testing.assert_array_equal(cube_subset.to_mask(), np.isin(mask, touched))

    # every channel: all candidates with a voxel in the ROI column
    everywhere = np.unique(mask[:, 51:63, 31:46])
    group_all = select_candidates_in_region(dc, cube_data, catalog_data, region,
                                            label="column")
    cat_all = next(s for s in group_all.subsets if s.data is catalog_data)
    np.testing.assert_array_equal(
        cat_all.to_mask(), np.isin(catalog_data["clump_id"], everywhere[everywhere > 0]))

    # glue's own propagation of the drawn ROI reaches the catalogue through the
    # coordinate links: it selects the candidates whose peak lies in the ROI.
    native = dc.new_subset_group("native", region)
    native_cat = next(s for s in native.subsets if s.data is catalog_data)
    px, py = np.asarray(catalog_data["peak_x"]), np.asarray(catalog_data["peak_y"])
    inside = (px > 30.5) & (px < 45.5) & (py > 50.5) & (py < 62.5)
    np.testing.assert_array_equal(native_cat.to_mask(), inside)


# -- verdict write-back -----------------------------------------------------------------------


def _group(dc, label):
    found = [g for g in dc.subset_groups if g.label == label]
    assert len(found) == 1, f"{len(found)} groups named {label!r}"
    return found[0]


def _masks(dc, label, cube_data, catalog_data):
    group = _group(dc, label)
    by_data = {s.data: s for s in group.subsets}
    return by_data[catalog_data].to_mask(), by_data[cube_data].to_mask()


def test_write_verdicts_twice_updates_in_place(pair):
    cube_data, catalog_data, dc = pair
    n = catalog_data.size
    ids = np.asarray(catalog_data["clump_id"])
    mask = np.asarray(cube_data["clump_id"])
    rng = np.random.default_rng(1)
    n_components = len(catalog_data.components)

    p1 = rng.random(n)
    v1 = np.where(p1 > 0.7, "clump", np.where(p1 < 0.3, "rejected", "uncertain"))
    lab1 = rng.choice([-1, 0, 1, 2], n)
    groups = write_verdicts(dc, catalog_data, p_clump=p1, verdict=v1, label=lab1)
    assert set(groups) == set(VERDICT_GROUPS + LABEL_GROUPS)
    assert len(catalog_data.components) == n_components + 3
    p_cid, v_cid, l_cid = (catalog_data.id[c] for c in ("p_clump", "verdict", "label"))
    np.testing.assert_array_equal(catalog_data["p_clump"], p1)
    np.testing.assert_array_equal(catalog_data.get_component("verdict").labels, v1)
    np.testing.assert_array_equal(catalog_data["label"], lab1)
    for group_label, rows in ((GROUP_CLUMPS, v1 == "clump"), (GROUP_REJECTED, v1 == "rejected"),
                              (GROUP_UNCERTAIN, v1 == "uncertain"),
                              (GROUP_LABELLED_CLUMP, lab1 == 1),
                              (GROUP_LABELLED_NOT_CLUMP, lab1 == 0)):
        cat_mask, cube_mask = _masks(dc, group_label, cube_data, catalog_data)
        np.testing.assert_array_equal(cat_mask, rows)
        np.testing.assert_array_equal(cube_mask, np.isin(mask, ids[rows]))

    # second run: new values, same components and groups, masks follow
    p2 = 1.0 - p1
    v2 = np.where(p2 > 0.5, "clump", "rejected")
    lab2 = np.where(lab1 == 1, 0, lab1)
    write_verdicts(dc, catalog_data, p_clump=p2, verdict=v2, label=lab2)
    assert len(catalog_data.components) == n_components + 3
    assert catalog_data.id["p_clump"] is p_cid and catalog_data.id["verdict"] is v_cid
    assert catalog_data.id["label"] is l_cid
    assert len(dc.subset_groups) == 5
    np.testing.assert_array_equal(catalog_data["p_clump"], p2)
    for group_label, rows in ((GROUP_CLUMPS, v2 == "clump"), (GROUP_REJECTED, v2 == "rejected"),
                              (GROUP_UNCERTAIN, np.zeros(n, bool)),
                              (GROUP_LABELLED_CLUMP, lab2 == 1),
                              (GROUP_LABELLED_NOT_CLUMP, lab2 == 0)):
        cat_mask, cube_mask = _masks(dc, group_label, cube_data, catalog_data)
        np.testing.assert_array_equal(cat_mask, rows)
        np.testing.assert_array_equal(cube_mask, np.isin(mask, ids[rows]))

    # colours follow the viewer's buttons, on the catalogue and the cube alike; a colour
    # the user picked later survives the next write-back
    colour = {g.label: g.style.color for g in dc.subset_groups}
    assert colour[GROUP_CLUMPS] == colour[GROUP_LABELLED_CLUMP] == LABEL_COLOURS[1]
    assert colour[GROUP_REJECTED] == colour[GROUP_LABELLED_NOT_CLUMP] == LABEL_COLOURS[0]
    assert colour[GROUP_UNCERTAIN] == LABEL_COLOURS[2]
    clumps = next(g for g in dc.subset_groups if g.label == GROUP_CLUMPS)
    assert {s.style.color for s in clumps.subsets} == {LABEL_COLOURS[1]}
    clumps.style.color = "#123456"
    write_verdicts(dc, catalog_data, p_clump=p2, verdict=v2, label=lab2)
    assert clumps.style.color == "#123456"

    # partial update by clump id keeps the other rows
    write_verdicts(dc, catalog_data, label=np.array([1, 2]), clump_id=ids[[5, 3]])
    expected = lab2.copy()
    expected[[5, 3]] = [1, 2]
    np.testing.assert_array_equal(catalog_data["label"], expected)
    cat_mask, _ = _masks(dc, GROUP_LABELLED_CLUMP, cube_data, catalog_data)
    np.testing.assert_array_equal(cat_mask, expected == 1)

    with pytest.raises(ValueError, match="verdicts must be one of"):
        write_verdicts(dc, catalog_data, verdict=np.full(n, "maybe"))
    with pytest.raises(ValueError, match="values for a catalogue"):
        write_verdicts(dc, catalog_data, p_clump=np.zeros(3))
    with pytest.raises(ValueError, match="not in catalogue"):
        write_verdicts(dc, catalog_data, label=np.array([1]), clump_id=np.array([10**6]))


# -- exporters --------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".fits", ".xml", ".ecsv"])
def test_catalogue_export_round_trip(pair, tmp_path, suffix):
    cube_data, catalog_data, dc = pair
    write_verdicts(dc, catalog_data, verdict=np.where(
        np.arange(catalog_data.size) % 2 == 0, "clump", "rejected"))
    path = export_catalog(catalog_data, tmp_path / f"cat{suffix}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = read_catalog(path)  # what the CLI reads
    assert len(back) == catalog_data.size
    assert back.colnames == [c.label for c in catalog_data.main_components]
    if suffix != ".xml":  # astropy keeps no table metadata in VOTable
        assert back.meta["detector"] == "clumpfind"
        assert back.meta["params"]["MinPix"] == 27
        assert back.meta["rms"] == pytest.approx(catalog_data.meta["ssclump_rms"])
    for name in ("clump_id", "peak_lon", "peak_vel", "flux", "npix", "touches_edge"):
        np.testing.assert_array_equal(np.asarray(back[name]), np.asarray(catalog_data[name]))
    assert back["peak_vel"].unit == "km / s" and back["peak_lon"].unit == "deg"
    for cid in catalog_data.main_components:
        units = catalog_data.get_component(cid).units
        if units:
            assert back[cid.label].unit == u.Unit(units), cid.label
    assert [str(v) for v in back["verdict"][:2]] == ["clump", "rejected"]

    # a subset of rows, through the exporter registered with glue
    rows = np.array([0, 10, 20])
    group = dc.new_subset_group("three", ElementSubsetState(indices=rows, data=catalog_data))
    subset = next(s for s in group.subsets if s.data is catalog_data)
    label = {".fits": "FITS table", ".xml": "VOTable", ".ecsv": "ECSV"}[suffix]
    exporter = next(f for lab, f, _ in GLUE_EXPORTERS if label in lab)
    exporter(str(tmp_path / f"sub{suffix}"), subset, components=[
        catalog_data.id["clump_id"], catalog_data.id["peak_vel"]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sub = Table.read(tmp_path / f"sub{suffix}")
    assert sub.colnames == ["clump_id", "peak_vel"]
    np.testing.assert_array_equal(sub["clump_id"], np.asarray(catalog_data["clump_id"])[rows])
    assert sub["peak_vel"].unit == "km / s"


def test_mask_cube_export(pair, tmp_path, l1448_cube):
    cube_data, catalog_data, dc = pair
    mask = np.asarray(cube_data["clump_id"])
    rows = np.array([1, 4, 9, 30])
    ids = np.asarray(catalog_data["clump_id"])[rows]
    group = dc.new_subset_group("sel", ElementSubsetState(indices=rows, data=catalog_data))
    expected = np.where(np.isin(mask, ids), mask, 0)
    for subset in group.subsets:  # from the catalogue subset and from the cube subset
        path = export_mask_cube(subset, tmp_path / f"mask_{subset.data.label}.fits")
        with fits.open(path) as hdul:
            np.testing.assert_array_equal(hdul[0].data, expected)
            assert hdul[0].data.dtype.kind == "i"
            header = hdul[0].header
        assert "BUNIT" not in header
        w = WCS(header)
        for pix in ((0, 0, 0), (50, 60, 20), (104, 3, 52)):
            np.testing.assert_allclose(
                w.pixel_to_world_values(*pix), l1448_cube.wcs.pixel_to_world_values(*pix))
        assert header["CUNIT3"].strip() == "km s-1"
    # the whole cube dataset: every candidate
    path = export_mask_cube(cube_data, tmp_path / "all.fits")
    np.testing.assert_array_equal(fits.getdata(path), mask)


def test_labels_csv_export_reads_back(pair, tmp_path):
    cube_data, catalog_data, dc = pair
    n = catalog_data.size
    ids = np.asarray(catalog_data["clump_id"])
    with pytest.raises(ValueError, match="no 'label' component"):
        export_labels_csv(catalog_data, tmp_path / "none.csv")
    codes = np.full(n, -1)
    codes[[0, 3, 7, 11]] = [1, 0, 2, 1]
    write_verdicts(dc, catalog_data, label=codes)
    path = export_labels_csv(catalog_data, tmp_path / "labels.csv")
    assert read_labels_csv(path) == {int(ids[0]): 1, int(ids[3]): 0, int(ids[7]): 2,
                                     int(ids[11]): 1}
    assert path.read_text().splitlines()[0] == "clump_id,label"
    # glue exporter on the "Labelled: clump" subset
    group = _group(dc, GROUP_LABELLED_CLUMP)
    subset = next(s for s in group.subsets if s.data is catalog_data)
    exporter = next(f for lab, f, _ in GLUE_EXPORTERS if "labels" in lab)
    exporter(str(tmp_path / "clumps.csv"), subset)
    assert read_labels_csv(tmp_path / "clumps.csv") == {int(ids[0]): 1, int(ids[11]): 1}


# -- detection on a cube opened with glue's FITS loader ------------------------------------------


def test_detect_in_data_matches_factory(loaded, l1448_path):
    cube_src, catalog_src, _, _ = loaded
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = load_data(str(l1448_path))
    dc = DataCollection([plain])
    catalog_data = detect_in_data(dc, plain, "clumpfind")
    assert catalog_data in dc and len(dc) == 2
    np.testing.assert_array_equal(plain["clump_id"], cube_src["clump_id"])
    np.testing.assert_array_equal(catalog_data["clump_id"], catalog_src["clump_id"])
    np.testing.assert_allclose(catalog_data["peak_vel"], catalog_src["peak_vel"], atol=1e-9)
    assert sum(isinstance(lk, JoinLink) for lk in dc.external_links) == 1
    assert len(dc.external_links) == 4
    group = select_candidates(dc, catalog_data, [3, 8])
    cube_subset = next(s for s in group.subsets if s.data is plain)
    np.testing.assert_array_equal(cube_subset.to_mask(), np.isin(plain["clump_id"], [3, 8]))

    # re-detecting updates clump_id and the same catalogue dataset in place
    write_verdicts(dc, catalog_data, p_clump=np.zeros(catalog_data.size))
    n_cube_components = len(plain.components)
    cat_again = detect_in_data(dc, plain, "clumpfind", params={"Tlow": "6rms"})
    assert cat_again is catalog_data and len(dc) == 2
    assert len(plain.components) == n_cube_components
    new_ids = np.unique(plain["clump_id"])
    assert 0 < new_ids.size - 1 < catalog_src.size
    np.testing.assert_array_equal(catalog_data["clump_id"], new_ids[1:])
    assert "p_clump" not in [c.label for c in catalog_data.main_components]
    assert len(dc.external_links) == 4
    np.testing.assert_array_equal(cube_subset.to_mask(), np.isin(plain["clump_id"], [3, 8]))

