"""build_catalog on hand-made masks with known answers, and crossmatch."""

from __future__ import annotations

import time
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from glue_ssclump.core.catalog import COLUMNS, build_catalog, crossmatch
from glue_ssclump.core.cube import cube_from_array
from glue_ssclump.core.progress import Cancelled, Progress
from glue_ssclump.version import __version__

SHAPE = (8, 10, 12)  # (v, y, x)


def header(shape=SHAPE) -> fits.Header:
    """Galactic CAR cube: x -> lon 30 - 0.01 x deg, y -> lat 0.01 y deg, z -> 10 + 0.5 z km/s."""
    h = fits.Header()
    for i, (ct, cu, cv, cd) in enumerate(
        [("GLON-CAR", "deg", 30.0, -0.01), ("GLAT-CAR", "deg", 0.0, 0.01),
         ("VRAD", "m/s", 10000.0, 500.0)], start=1
    ):
        h[f"CTYPE{i}"], h[f"CUNIT{i}"], h[f"CRVAL{i}"], h[f"CDELT{i}"] = ct, cu, cv, cd
        h[f"CRPIX{i}"] = 1.0
        h[f"NAXIS{i}"] = shape[::-1][i - 1]
    h["BUNIT"] = "K"
    return h


def make_cube(data):
    return cube_from_array(np.asarray(data, dtype=np.float32), header(np.shape(data)), source="t")


@pytest.fixture
def known():
    """Cube + mask with four candidates whose measurements are worked out by hand."""
    data = np.zeros(SHAPE, dtype=np.float32)
    mask = np.zeros(SHAPE, dtype=np.int32)
    # 1: 3x3x3 block of 1 K centred on (z, y, x) = (3, 4, 5), 5 K at the centre
    data[2:5, 3:6, 4:7] = 1.0
    data[3, 4, 5] = 5.0
    mask[2:5, 3:6, 4:7] = 1
    # 2: two voxels, +2 K and -1 K: the negative one has no weight
    data[6, 1, 1], data[6, 1, 2] = 2.0, -1.0
    mask[6, 1, 1] = mask[6, 1, 2] = 2
    # 4 (id 3 unused): on the first channel (array border), all negative -> uniform weights
    data[0, 8, 8:10] = -0.5
    mask[0, 8, 8:10] = 4
    # 5: interior, next to a NaN blank
    data[4, 8, 2] = 3.0
    data[4, 8, 1] = np.nan
    mask[4, 8, 2] = 5
    return make_cube(data), mask


def test_columns_units_and_meta(known):
    cube, mask = known
    cat = build_catalog(cube, mask, "handmade", 0.5, {"min_npix": 1})
    assert cat.colnames == [name for name, _ in COLUMNS]
    for name, unit in COLUMNS:
        if unit is None:
            assert cat[name].unit is None, name
        else:
            assert cat[name].unit == u.Unit(unit), name
    assert cat["flux_int"].unit.is_equivalent(u.K * u.km / u.s * u.sr)
    assert list(cat["clump_id"]) == [1, 2, 4, 5]
    assert set(cat["detector"]) == {"handmade"}
    assert cat.meta["frame"] == "galactic"
    assert (cat.meta["lon_name"], cat.meta["lat_name"]) == ("GLON", "GLAT")
    assert cat.meta["detector"] == "handmade"
    assert cat.meta["params"] == {"min_npix": 1}
    assert cat.meta["rms"] == 0.5
    assert cat.meta["source"] == "t"
    assert cat.meta["version"] == __version__


def test_known_block(known):
    cube, mask = known
    r = build_catalog(cube, mask, "h", 0.5)[0]
    assert r["clump_id"] == 1
    assert r["npix"] == 27
    assert r["peak_value"] == 5.0
    assert (r["peak_x"], r["peak_y"], r["peak_z"]) == (5, 4, 3)
    assert (r["cen_x"], r["cen_y"], r["cen_z"]) == pytest.approx((5.0, 4.0, 3.0))
    # 18 of the 27 voxels sit one pixel off-centre along each axis, each weight 1; total weight 31
    expected = np.sqrt(18 / 31)
    assert (r["size_x"], r["size_y"], r["size_z"]) == pytest.approx((expected,) * 3)
    assert r["flux"] == pytest.approx(31.0)
    assert r["snr_peak"] == pytest.approx(10.0)
    assert r["peak_lon"] == pytest.approx(30.0 - 0.05)
    assert r["peak_lat"] == pytest.approx(0.04)
    assert r["peak_vel"] == pytest.approx(11.5)
    assert (r["cen_lon"], r["cen_lat"], r["cen_vel"]) == pytest.approx((29.95, 0.04, 11.5))
    assert r["size_lon"] == pytest.approx(expected * 36.0)  # 0.01 deg pixels, in arcsec
    assert r["size_lat"] == pytest.approx(expected * 36.0)
    assert r["size_vel"] == pytest.approx(expected * 0.5)
    assert r["flux_int"] == pytest.approx(31.0 * 0.5 * 36.0 * 36.0)
    assert not r["touches_edge"]


def test_negative_voxels_have_no_weight(known):
    cube, mask = known
    r = build_catalog(cube, mask, "h", 0.5)[1]
    assert r["npix"] == 2
    assert r["flux"] == pytest.approx(1.0)
    assert (r["cen_x"], r["cen_y"], r["cen_z"]) == pytest.approx((1.0, 1.0, 6.0))
    assert (r["size_x"], r["size_y"], r["size_z"]) == pytest.approx((0.0, 0.0, 0.0))
    assert (r["peak_x"], r["peak_y"], r["peak_z"]) == (1, 1, 6)


def test_all_negative_candidate_uses_uniform_weights(known):
    cube, mask = known
    r = build_catalog(cube, mask, "h", 0.5)[2]
    assert r["clump_id"] == 4
    assert r["cen_x"] == pytest.approx(8.5)
    assert r["size_x"] == pytest.approx(0.5)
    assert r["flux"] == pytest.approx(-1.0)
    assert r["peak_x"] == 8  # tie: the first voxel in (v, y, x) order


def test_edge_flags(known):
    cube, mask = known
    cat = build_catalog(cube, mask, "h", 0.5)
    flags = dict(zip(cat["clump_id"].tolist(), cat["touches_edge"].tolist(), strict=True))
    # 1 interior; 2 at y=1,x=1 interior; 4 on channel 0 (border); 5 next to a NaN
    assert flags == {1: False, 2: False, 4: True, 5: True}
    labels2 = mask.copy()
    labels2[labels2 == 2] = 0
    labels2[7, 1, 1] = 2  # last channel: border
    assert build_catalog(cube, labels2, "h", 0.5)["touches_edge"][1]


def test_units_follow_a_cube_not_in_k(known):
    cube, mask = known
    h = header()
    h["BUNIT"] = "Jy/beam"  # no beam: stays Jy/beam
    jy = cube_from_array(cube.data, h)
    assert jy.unit != "K"
    cat = build_catalog(jy, mask, "h", 0.5)
    assert cat["peak_value"].unit == u.Jy / u.beam
    assert cat["flux"].unit == u.Jy / u.beam
    assert cat["flux_int"].unit == u.Jy / u.beam * u.km / u.s * u.arcsec**2


def test_nan_inside_candidate_not_the_peak():
    data = np.zeros(SHAPE, dtype=np.float32)
    data[3, 3, 3:6] = [1.0, np.nan, 2.0]
    mask = np.zeros(SHAPE, dtype=np.int32)
    mask[3, 3, 3:6] = 1
    r = build_catalog(make_cube(data), mask, "h", 1.0)[0]
    assert r["npix"] == 3 and r["flux"] == pytest.approx(3.0)
    assert r["peak_x"] == 5 and r["touches_edge"]


def test_empty_mask_and_bad_input(known):
    cube, mask = known
    cat = build_catalog(cube, np.zeros_like(mask), "h", 0.5)
    assert len(cat) == 0 and cat.colnames == [name for name, _ in COLUMNS]
    with pytest.raises(ValueError, match="does not match"):
        build_catalog(cube, mask[:, :, :3], "h", 0.5)
    with pytest.raises(ValueError, match="integer"):
        build_catalog(cube, mask.astype(float), "h", 0.5)


def test_progress_and_cancel(known):
    cube, mask = known
    seen = []
    build_catalog(cube, mask, "h", 0.5, progress=Progress(lambda f, m: seen.append(f),
                                                            min_interval=0))
    assert seen[-1] == 1.0
    p = Progress()
    p.cancel()
    with pytest.raises(Cancelled):
        build_catalog(cube, mask, "h", 0.5, progress=p)


def test_many_candidates_fast():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    shape = (100, 200, 200)
    mask = np.zeros(shape, dtype=np.int32)
    pts = rng.integers(0, shape, size=(25000, 3))
    mask[tuple(pts.T)] = np.arange(1, 25001)
    mask = ndimage.grey_dilation(mask, size=(2, 2, 2))
    n = np.unique(mask).size - 1
    cube = make_cube(rng.normal(size=shape))
    t0 = time.perf_counter()
    cat = build_catalog(cube, mask, "h", 1.0)
    elapsed = time.perf_counter() - t0
    assert len(cat) == n > 20000
    assert elapsed < 20.0  # a per-candidate loop over the cube would take minutes
    # spot-check one row against a direct computation
    i = len(cat) // 2
    cid = cat["clump_id"][i]
    vals = cube.data[mask == cid]
    assert cat["npix"][i] == vals.size
    assert cat["flux"][i] == pytest.approx(vals.sum(dtype=np.float64), rel=1e-6)
    assert cat["peak_value"][i] == vals.max()


# -- crossmatch -----------------------------------------------------------------------


def blocks_cube():
    rng = np.random.default_rng(5)
    return make_cube(rng.uniform(0.1, 1.0, SHAPE))


def cat_of(cube, mask, name):
    return build_catalog(cube, mask, name, 0.1)


def test_crossmatch_identical():
    cube = blocks_cube()
    la = np.zeros(SHAPE, dtype=np.int32)
    la[1:4, 1:4, 1:4] = 1
    la[5:7, 5:9, 5:9] = 2
    a, b = cat_of(cube, la, "clumpfind"), cat_of(cube, la, "dendrogram")
    m = crossmatch(a, la, b, la)
    assert list(m["matched_by"]) == ["dendrogram", "dendrogram"]
    assert list(m["match_id"]) == [1, 2]
    assert list(m["n_detectors"]) == [2, 2]
    assert "matched_by" not in a.colnames  # a copy
    assert m.meta["crossmatch"]["n_matched"] == 2


def test_crossmatch_overlap_fraction():
    cube = blocks_cube()
    la = np.zeros(SHAPE, dtype=np.int32)
    lb = np.zeros(SHAPE, dtype=np.int32)
    la[2, 2, 0:10] = 1  # 10 voxels
    lb[2, 2, 4:12] = 7  # 8 voxels, 6 shared: 6/8 of the smaller
    la[5, 5, 0:10] = 2
    lb[5, 5, 7:12] = 3  # 5 voxels, 3 shared: 3/5
    cube.data[2, 2, :] = np.arange(12)[::-1]  # peaks differ (x=0 for a, x=4 for b)
    cube.data[5, 5, :] = np.arange(12)[::-1]
    a, b = cat_of(cube, la, "A"), cat_of(cube, lb, "B")
    m = crossmatch(a, la, b, lb, min_overlap=0.7)
    assert list(m["match_id"]) == [7, 0]
    assert list(m["matched_by"]) == ["B", ""]
    assert list(m["n_detectors"]) == [2, 1]
    m = crossmatch(a, la, b, lb, min_overlap=0.6)
    assert list(m["match_id"]) == [7, 3]


def test_crossmatch_same_peak_wins_with_small_overlap():
    cube = blocks_cube()
    la = np.zeros(SHAPE, dtype=np.int32)
    lb = np.zeros(SHAPE, dtype=np.int32)
    la[3, 0:10, 5] = 1
    cube.data[3, 4, 5] = 50.0  # the peak of both
    lb[3, 4, 0:10] = 1  # shares only the peak voxel: 1/10
    lb[3, 5:10, 5] = 2  # shares 5 voxels with a (5/5 of the smaller) but another peak
    a, b = cat_of(cube, la, "A"), cat_of(cube, lb, "B")
    assert b["peak_x"][0] == 5 and b["peak_y"][0] == 4
    m = crossmatch(a, la, b, lb)
    assert m["match_id"][0] == 1  # same peak beats the larger overlap
    lb2 = lb.copy()
    lb2[3, 4, 5] = 0  # b1 no longer holds a's peak: only b2 (by overlap) qualifies
    b2 = cat_of(cube, lb2, "B")
    assert crossmatch(a, la, b2, lb2)["match_id"][0] == 2


def test_crossmatch_no_overlap_and_validation():
    cube = blocks_cube()
    la = np.zeros(SHAPE, dtype=np.int32)
    lb = np.zeros(SHAPE, dtype=np.int32)
    la[1, 1, 1:3] = 1
    lb[6, 6, 6:9] = 1
    m = crossmatch(cat_of(cube, la, "A"), la, cat_of(cube, lb, "B"), lb)
    assert list(m["match_id"]) == [0] and list(m["n_detectors"]) == [1]
    assert m["matched_by"][0] == ""
    with pytest.raises(ValueError, match="differ in shape"):
        crossmatch(cat_of(cube, la, "A"), la, cat_of(cube, lb, "B"), lb[:, :, :5])


@pytest.mark.parametrize("suffix", ["fits", "ecsv", "xml"])
def test_write_read_catalog_keeps_columns_units_and_meta(tmp_path, l1448_cube, suffix):
    from glue_ssclump.core.catalog import read_catalog, write_catalog

    mask = np.load(Path(__file__).parent / "data" / "l1448_cupid_labels.npz")["fellwalker_cfg"]
    cat = build_catalog(l1448_cube, mask, "fellwalker", 0.15, {"Noise": 0.3})
    back = read_catalog(write_catalog(cat, tmp_path / f"cat.{suffix}"))
    assert back.colnames == cat.colnames
    for name in cat.colnames:
        assert back[name].unit == cat[name].unit, name
    np.testing.assert_allclose(back["peak_vel"], cat["peak_vel"])
    assert list(back["detector"]) == list(cat["detector"])
    if suffix != "xml":  # astropy writes no table metadata into VOTables
        assert back.meta["params"] == {"Noise": 0.3}
        assert back.meta["rms"] == 0.15 and back.meta["frame"] == cat.meta["frame"]


def test_catalog_format_is_checked(tmp_path):
    from glue_ssclump.core.catalog import write_catalog

    with pytest.raises(ValueError, match="cannot tell the catalogue format"):
        write_catalog(Table({"a": [1]}), tmp_path / "cat.txt")
