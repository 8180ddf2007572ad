"""glue-core side of the galaxy clumps (no Qt): factory identifier and ranking, the image
and catalogue datasets, pixel-row conventions (PNG rows flipped as glue's reader does),
links and brushing, verdict write-back, exporters.

Images are tiny synthetic galaxies from the real core (``synth_galaxy``); catalogues are
hand-made where a test needs known positions.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import shapely
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from glue.core import DataCollection
from glue.core.data_factories import find_factory, load_data
from glue.core.data_factories.fits import fits_reader
from glue.core.data_factories.image import img_data
from glue.core.data_region import RegionData
from glue.core.roi import RectangularROI
from glue.core.subset import ElementSubsetState, RoiSubsetState
from PIL import Image

from glue_ssclump.core.errors import SSClumpError
from glue_ssclump.core.galaxy.image import image_from_planes, read_galaxy_image, write_gri_fits
from glue_ssclump.core.galaxy.synth import synth_galaxy
from glue_ssclump.integration.exporters import catalog_table, export_catalog
from glue_ssclump.integration.galaxy_exporters import ds9_regions, export_ds9_regions
from glue_ssclump.integration.galaxy_factory import (
    BOX,
    Y_UP,
    attach_galaxy_clumps,
    clump_data_for,
    galaxy_pairs,
    image_data_for,
    is_galaxy_file,
    load_galaxy_clumps,
    make_galaxy_pair,
)
from glue_ssclump.integration.galaxy_links import link_galaxy, suggest_galaxy_links
from glue_ssclump.integration.galaxy_verdicts import group_label, set_verdict, verdicts_of
from glue_ssclump.integration.registration import register_all

NY, NX = 40, 56  # not square, and the clumps below are off-centre: flips would show


def _table(xy: list[tuple[float, float]], classes: list[str] | None = None,
           half: float = 2.0) -> Table:
    """A detection table in the core's columns (pixel centres at integers)."""
    xy_arr = np.asarray(xy, dtype=float)
    t = Table()
    t["clump_id"] = np.arange(1, len(xy) + 1)
    t["x"], t["y"] = xy_arr[:, 0], xy_arr[:, 1]
    t["x_min"], t["y_min"] = xy_arr[:, 0] - half, xy_arr[:, 1] - half
    t["x_max"], t["y_max"] = xy_arr[:, 0] + half, xy_arr[:, 1] + half
    for name in ("x", "y", "x_min", "y_min", "x_max", "y_max"):
        t[name].unit = "pix"
    t["ra"] = np.full(len(xy), np.nan)
    t["dec"] = np.full(len(xy), np.nan)
    t["ra"].unit = t["dec"].unit = "deg"
    t["score"] = np.linspace(0.9, 0.5, len(xy))
    t["class"] = classes or ["clump"] * len(xy)
    t["class_id"] = [1 if c == "clump" else 2 for c in t["class"]]
    t["flux_ratio"] = np.full(len(xy), 0.05)
    return t


#: Clumps at (x, y) = (numpy column, numpy row as stored): near the top-left and
#: bottom-right corners of the array, so any flip or transpose moves them.
CLUMPS_XY = [(6.0, 4.0), (47.0, 33.0), (20.0, 30.0)]


def _planes_with_spots() -> np.ndarray:
    """g, r, i planes: faint noise plus a bright 3x3 spot at each CLUMPS_XY position."""
    rng = np.random.default_rng(5)
    planes = rng.normal(0, 1.0, size=(3, NY, NX)).astype(np.float32)
    for x, y in CLUMPS_XY:
        planes[:, int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2] += 400.0
    return planes


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A plain PNG, a plain 2D FITS, a g,r,i FITS cube with a WCS, and an RGB PNG of
    the same spots (written as stored: numpy row 0 is the top PNG row)."""
    root = tmp_path_factory.mktemp("galaxy_files")
    planes = _planes_with_spots()
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.1, 2.2]
    wcs.wcs.crpix = [NX / 2, NY / 2]
    wcs.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    image = image_from_planes(planes, wcs=wcs)
    gri = write_gri_fits(root / "galaxy_gri.fits", image)
    rgb_png = root / "galaxy.png"
    Image.fromarray(image.rgb).save(rgb_png)
    plain_png = root / "plain.png"
    Image.fromarray((np.arange(NY * NX).reshape(NY, NX) % 251).astype(np.uint8)).save(plain_png)
    plain_fits = root / "plain.fits"
    fits.PrimaryHDU(planes[1]).writeto(plain_fits)
    return {"gri": gri, "png": rgb_png, "plain_png": plain_png, "plain_fits": plain_fits,
            "root": root}


def _pair(path, table: Table):
    image = read_galaxy_image(str(path))
    image_data, clumps = make_galaxy_pair(image, table, "galaxy")
    dc = DataCollection([image_data, clumps])
    link_galaxy(dc, image_data, clumps)
    return image, image_data, clumps, dc


# -- the factory's identifier and rank --------------------------------------------------------


def test_glue_keeps_opening_plain_png_and_fits_with_its_own_readers(files):
    register_all()
    assert not is_galaxy_file(str(files["plain_png"]))
    assert not is_galaxy_file(str(files["plain_fits"]))
    assert not is_galaxy_file(str(files["png"]))  # an RGB PNG could be anything
    assert find_factory(str(files["plain_png"])) is img_data
    assert find_factory(str(files["plain_fits"])) is fits_reader
    # Sure of a g,r,i FITS cube, but ranked below glue's FITS reader: never automatic.
    assert is_galaxy_file(str(files["gri"]))
    assert find_factory(str(files["gri"])) is fits_reader
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = load_data(str(files["plain_png"]))
    assert not isinstance(plain, list) and not isinstance(plain, RegionData)


def test_identifier_needs_the_band_marker(files, tmp_path):
    unmarked = tmp_path / "three_planes.fits"
    fits.PrimaryHDU(np.zeros((3, NY, NX), np.float32)).writeto(unmarked)
    assert not is_galaxy_file(str(unmarked))
    marked = tmp_path / "filters.fits"
    header = fits.Header()
    for k, band in enumerate("gri", start=1):
        header[f"FILTER{k}"] = band
    fits.PrimaryHDU(np.zeros((3, NY, NX), np.float32), header=header).writeto(marked)
    assert is_galaxy_file(str(marked))
    assert not is_galaxy_file(str(tmp_path / "missing.fits"))


# -- pixel rows: PNG flipped like glue's reader, FITS as stored ------------------------------------


def test_png_image_matches_glue_reader_and_links_flip_rows(files):
    image, image_data, clumps, dc = _pair(files["png"], _table(CLUMPS_XY))
    # Same pixels, same orientation as glue's own PNG reader.
    glue_png = img_data(str(files["png"]))
    for name in ("red", "green", "blue"):
        np.testing.assert_array_equal(image_data[name], glue_png[name])
    assert image_data.coords is None and image_data.meta["ssclump_rows_flipped"] == 1
    # The catalogue computes the image pixel of each clump through the links.
    row = np.asarray(clumps[image_data.pixel_component_ids[0]])
    col = np.asarray(clumps[image_data.pixel_component_ids[1]])
    np.testing.assert_allclose(row, NY - 1 - np.array([y for _, y in CLUMPS_XY]))
    np.testing.assert_allclose(col, [x for x, _ in CLUMPS_XY])
    # ... and the linked pixel is the bright spot of that clump (not its mirror image).
    lum = np.asarray(image_data["luminance"])
    for r, c in zip(row.astype(int), col.astype(int), strict=True):
        assert lum[r, c] > 4 * np.median(lum)
        assert lum[NY - 1 - r, c] < lum[r, c]
    # Boxes in glue's pixel frame: flipped rows.
    box = clumps.get_component(BOX).data[0]
    x0, y0, x1, y1 = box.bounds
    assert (x0, x1) == (4.0, 8.0) and (y0, y1) == (NY - 1 - 6.0, NY - 1 - 2.0)
    # The display-only column is not exported.
    assert Y_UP in [c.label for c in clumps.main_components]
    assert Y_UP not in catalog_table(clumps).colnames


def test_fits_image_with_wcs_links_on_sky_and_rows_are_not_flipped(files):
    image, image_data, clumps, dc = _pair(files["gri"], _table(CLUMPS_XY))
    assert isinstance(image_data.coords, WCS) and image_data.meta["ssclump_rows_flipped"] == 0
    np.testing.assert_array_equal(image_data["r"], image.planes[1])
    # ra/dec filled from the WCS (the table had NaN) and linked to the image's world axes.
    assert clumps.meta["ssclump_region_centres"] == "ra,dec"
    ra, dec = image.wcs.wcs_pix2world([x for x, _ in CLUMPS_XY], [y for _, y in CLUMPS_XY], 0)
    np.testing.assert_allclose(clumps["ra"], ra)
    row = np.asarray(clumps[image_data.pixel_component_ids[0]])
    col = np.asarray(clumps[image_data.pixel_component_ids[1]])
    np.testing.assert_allclose(row, [y for _, y in CLUMPS_XY], atol=1e-6)
    np.testing.assert_allclose(col, [x for x, _ in CLUMPS_XY], atol=1e-6)
    lum = np.asarray(image_data["luminance"])
    assert all(lum[int(round(r)), int(round(c))] > 4 * np.median(lum)
               for r, c in zip(row, col, strict=True))


def test_galactic_wcs_links_in_its_own_frame(files, tmp_path):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["GLON-TAN", "GLAT-TAN"]
    wcs.wcs.crval = [30.0, 1.0]
    wcs.wcs.crpix = [NX / 2, NY / 2]
    wcs.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    path = write_gri_fits(tmp_path / "galactic.fits",
                          image_from_planes(_planes_with_spots(), wcs=wcs))
    table = _table(CLUMPS_XY)
    # As the core writes them: ICRS ra / dec, not the image's galactic frame.
    icrs = wcs.pixel_to_world(table["x"], table["y"]).icrs
    table["ra"], table["dec"] = icrs.ra.deg, icrs.dec.deg
    image, image_data, clumps, dc = _pair(path, table)
    assert clumps.meta["ssclump_region_centres"] == "lon_image,lat_image"
    np.testing.assert_allclose(clumps["ra"], icrs.ra.deg)  # the table's columns untouched
    col = np.asarray(clumps[image_data.pixel_component_ids[1]])
    row = np.asarray(clumps[image_data.pixel_component_ids[0]])
    np.testing.assert_allclose(col, [x for x, _ in CLUMPS_XY], atol=1e-6)
    np.testing.assert_allclose(row, [y for _, y in CLUMPS_XY], atol=1e-6)
    assert "lon_image" not in catalog_table(clumps).colnames  # display only


# -- brushing both ways --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["png", "gri"])
def test_region_on_image_selects_rows_and_rows_select_boxes(files, kind):
    image, image_data, clumps, dc = _pair(files[kind], _table(CLUMPS_XY))
    # A rectangle on the image (glue pixel axes, as the image viewer makes it) around
    # the clump stored at numpy row 4, column 6: in glue that row is NY - 1 - 4 for PNG.
    glue_row = NY - 1 - 4 if kind == "png" else 4
    roi = RectangularROI(2, 10, glue_row - 3, glue_row + 3)
    state = RoiSubsetState(image_data.pixel_component_ids[1], image_data.pixel_component_ids[0],
                           roi)
    group = dc.new_subset_group("region", state)
    subset = next(s for s in group.subsets if s.data is clumps)
    np.testing.assert_array_equal(subset.to_mask(), [True, False, False])
    # Rows -> a subset of the RegionData: what the image viewer draws as boxes.
    rows = dc.new_subset_group("rows", ElementSubsetState(indices=[1, 2], data=clumps))
    subset = next(s for s in rows.subsets if s.data is clumps)
    np.testing.assert_array_equal(subset.to_mask(), [False, True, True])
    assert clump_data_for(dc, image_data) is clumps and image_data_for(dc, clumps) is image_data


# -- verdicts ----------------------------------------------------------------------------------


def test_verdicts_are_columns_and_coloured_groups(files):
    image = read_galaxy_image(str(files["png"]))
    dc = DataCollection()
    image_data, clumps = attach_galaxy_clumps(dc, image, _table(CLUMPS_XY,
                                                                ["clump", "odd", "clump"]))
    assert image_data in dc and clumps in dc
    groups = {g.label: g for g in dc.subset_groups}
    assert {label: g.style.color for label, g in groups.items()} == {
        "galaxy clumps: clump": "#2ca02c", "galaxy clumps: odd": "#ff7f0e",
        "galaxy clumps: rejected": "#d62728"}

    def mask(verdict, data=None):
        data = clumps if data is None else data
        group = next(g for g in dc.subset_groups if g.label == group_label(data, verdict))
        return next(s for s in group.subsets if s.data is data).to_mask().tolist()

    assert verdicts_of(clumps).tolist() == ["clump", "odd", "clump"]
    assert mask("clump") == [True, False, True]
    assert set_verdict(dc, clumps, np.array([False, False, True]), "rejected") == 1
    assert set_verdict(dc, clumps, [0], "odd") == 1
    assert verdicts_of(clumps).tolist() == ["odd", "odd", "rejected"]
    assert mask("clump") == [False, False, False]
    assert mask("odd") == [True, True, False]
    assert mask("rejected") == [False, False, True]
    assert len(dc.subset_groups) == 3  # updated, never duplicated
    with pytest.raises(ValueError, match="verdicts must be one of"):
        set_verdict(dc, clumps, [0], "uncertain")
    # A second detection on the same image replaces its catalogue (new rows).
    _, clumps2 = attach_galaxy_clumps(dc, image, _table(CLUMPS_XY[:2]), image_data=image_data)
    assert clumps not in dc and clumps2 in dc and clumps2.size == 2
    assert len(dc.subset_groups) == 3
    assert verdicts_of(clumps2).tolist() == ["clump", "clump"]
    assert mask("clump", clumps2) == [True, True]
    # A second galaxy gets its own three groups; the first keeps its own.
    _, other = attach_galaxy_clumps(dc, image, _table(CLUMPS_XY[:1]), name="other")
    assert len(dc.subset_groups) == 6
    set_verdict(dc, other, [0], "rejected")
    assert mask("rejected", other) == [True] and mask("clump", clumps2) == [True, True]


def test_empty_detection_adds_no_catalogue(files):
    """glue's viewers fail on a zero-row dataset: nothing detected, no catalogue."""
    image = read_galaxy_image(str(files["png"]))
    dc = DataCollection()
    image_data, clumps = attach_galaxy_clumps(dc, image, _table(CLUMPS_XY))
    same, none = attach_galaxy_clumps(dc, image, _table(CLUMPS_XY)[:0], image_data=image_data)
    assert same is image_data and none is None
    assert list(dc) == [image_data] and clump_data_for(dc, image_data) is None


def test_autolinker_links_factory_pairs_once(files):
    image = read_galaxy_image(str(files["png"]))
    image_data, clumps = make_galaxy_pair(image, _table(CLUMPS_XY), "g")
    dc = DataCollection([image_data, clumps])
    links = suggest_galaxy_links(dc)
    assert len(links) == 2
    dc.add_link(links)
    assert suggest_galaxy_links(dc) == []  # offered once
    assert not dc.subset_groups  # see suggest_galaxy_links: groups come later
    assert verdicts_of(clumps).tolist() == ["clump"] * 3  # the column is there already


# -- exporters -------------------------------------------------------------------------------


def test_catalogue_and_verified_subset_export(files, tmp_path):
    image = read_galaxy_image(str(files["gri"]))
    dc = DataCollection()
    _, clumps = attach_galaxy_clumps(dc, image, _table(CLUMPS_XY, ["clump", "odd", "clump"]))
    set_verdict(dc, clumps, [2], "rejected")
    out = export_catalog(clumps, tmp_path / "clumps.fits")
    table = Table.read(out)
    assert BOX not in table.colnames and len(table) == 3
    assert table["x"].unit == "pix" and table["ra"].unit == "deg"
    assert list(table["verdict"]) == ["clump", "odd", "rejected"]
    group = next(g for g in dc.subset_groups if g.label == group_label(clumps, "clump"))
    subset = next(s for s in group.subsets if s.data is clumps)
    kept = Table.read(export_catalog(subset, tmp_path / "verified.ecsv"))
    assert list(kept["clump_id"]) == [1]
    text = ds9_regions(clumps)
    lines = [ln for ln in text.splitlines() if ln.startswith("box(")]
    assert len(lines) == 3
    # DS9 image coordinates are 1-based: clump 1 at numpy (x, y) = (6, 4).
    assert lines[0].startswith("box(7.00,5.00,4.00,4.00,0)") and "text={1 clump}" in lines[0]
    assert "#d62728" in lines[2]
    path = export_ds9_regions(subset, tmp_path / "clumps.reg")
    assert sum(ln.startswith("box(") for ln in path.read_text().splitlines()) == 1
    with pytest.raises(ValueError, match="not a galaxy clump catalogue"):
        ds9_regions(image_data_for(dc, clumps))


# -- bad input ---------------------------------------------------------------------------------


def test_factory_bad_input_raises_the_project_error(files, tmp_path):
    with pytest.raises(SSClumpError, match="does not exist"):
        load_galaxy_clumps(str(tmp_path / "nope.fits"))
    with pytest.raises(SSClumpError):
        load_galaxy_clumps(str(files["plain_fits"]))  # one plane, not g, r, i


def test_synthetic_galaxy_truth_boxes_land_on_its_clumps():
    image, truth = synth_galaxy(7, size=64, n_clumps=2, n_stars=1)
    truth["clump_id"] = np.arange(1, len(truth) + 1)
    dc = DataCollection()
    image_data, clumps = attach_galaxy_clumps(dc, image, truth)
    for k, box in enumerate(clumps.get_component(BOX).data):
        assert box.contains(shapely.Point(truth["x"][k], truth["y"][k]))


def test_session_round_trip_keeps_boxes_links_and_verdicts(files, tmp_path):
    from glue_ssclump.integration.session import load_session, save_session

    image = read_galaxy_image(str(files["png"]))
    dc = DataCollection()
    _, clumps = attach_galaxy_clumps(dc, image, _table(CLUMPS_XY))
    set_verdict(dc, clumps, [1], "rejected")
    restored = load_session(save_session(dc, tmp_path / "galaxy.glu"))
    (image2, clumps2), = galaxy_pairs(restored)
    assert isinstance(clumps2, RegionData)
    assert [b.bounds for b in clumps2.get_component(BOX).data] == \
        [b.bounds for b in clumps.get_component(BOX).data]
    assert verdicts_of(clumps2).tolist() == ["clump", "rejected", "clump"]
    np.testing.assert_allclose(clumps2[image2.pixel_component_ids[0]],
                               NY - 1 - np.asarray(clumps["y"]))
    group = next(g for g in restored.subset_groups
                 if g.label == group_label(clumps2, "rejected"))
    assert next(s for s in group.subsets if s.data is clumps2).to_mask().tolist() == \
        [False, True, False]


def test_factory_with_the_shipped_detector_finds_synthetic_clumps(tmp_path):
    """End to end through glue's load_data: the real reader, the shipped Faster R-CNN,
    the post-processing, then the glue datasets; detections land on true clumps."""
    image, truth = synth_galaxy(4, size=200)  # 4 clumps + 1 star in the truth
    path = write_gri_fits(tmp_path / "synth_gri.fits", image)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image_data, clumps = load_data(str(path), factory=load_galaxy_clumps)
    assert isinstance(clumps, RegionData) and clumps.size >= 1
    assert np.all(np.asarray(clumps["score"]) >= 0.3)
    found = np.column_stack([clumps["x"], clumps["y"]])
    near = [np.hypot(*(found - [x, y]).T).min() < 0.75 * image.psf_fwhm_pix
            for x, y in zip(truth["x"], truth["y"], strict=True)]
    assert sum(near) >= 2
    dc = DataCollection([image_data, clumps])
    dc.add_link(suggest_galaxy_links(dc))
    # Each box encloses the image pixel its centre links to.
    row = np.asarray(clumps[image_data.pixel_component_ids[0]])
    col = np.asarray(clumps[image_data.pixel_component_ids[1]])
    for k, box in enumerate(clumps.get_component(BOX).data):
        assert box.contains(shapely.Point(col[k], row[k]))
