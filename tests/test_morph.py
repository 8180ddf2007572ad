"""The morphology-truth generator (core/synthetic_morph.py) and its truth rule."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from glue_ssclump.core.cube import cube_from_array
from glue_ssclump.core.errors import SSClumpError
from glue_ssclump.core.pipeline import detect
from glue_ssclump.core.synthetic_morph import candidate_kinds, make_morph_cube, morph_truth

SMALL = (40, 96, 96)


@pytest.fixture(scope="module")
def hard_cube():
    return make_morph_cube(3, "morph_hard", shape=SMALL)


def _truth(rows):
    t = Table(rows=rows, names=("kind", "x", "y", "z", "snr_peak", "ext_at_peak"))
    t["is_target"] = np.isin(t["kind"], ("compact", "large"))
    return t


def _cands(peaks):
    px, py, pz = np.asarray(peaks, float).T
    return Table({"peak_x": px, "peak_y": py, "peak_z": pz})


def test_truth_rule_semantics():
    truth = _truth([
        ("compact", 10.0, 10.0, 5.0, 8.0, 1.0),     # bright, dominant: target
        ("compact", 30.0, 30.0, 5.0, 2.5, 0.0),     # SNR < 3: not
        ("compact", 50.0, 50.0, 5.0, 6.0, 9.0),     # buried in a brighter cloud: not
        ("filament", 70.0, 70.0, 5.0, 12.0, 0.0),   # extended: never
        ("truncated", 90.0, 90.0, 5.0, 20.0, 0.0),  # peak outside the data: never
        ("large", 10.0, 60.0, 5.0, 10.0, 2.0),      # only at its own peak
    ])
    cands = _cands([
        (11, 11, 6), (10, 10, 9), (13, 10, 5),      # near, too far in v, too far on sky
        (30, 30, 5), (50, 50, 5), (70, 70, 5), (90, 90, 5),
        (10, 60, 5), (16, 60, 5),                   # large clump: peak piece, off-peak piece
    ])
    got = morph_truth(cands, truth)
    assert got.tolist() == [True, False, False, False, False, False, False, True, False]
    # the thresholds are parameters
    assert morph_truth(cands, truth, snr_min=2.0)[3]
    assert morph_truth(cands, truth, dominance=0.5)[4]
    assert morph_truth(cands, truth, dchan=5.0)[1]


def test_cube_wcs_blanks_and_reproducibility(hard_cube):
    data, header, truth, models = hard_cube
    assert data.shape == SMALL and data.dtype == np.float32
    assert header["CTYPE1"] == "GLON-CAR" and header["CTYPE3"] == "VRAD"
    assert header["CUNIT3"] == "m/s"
    cube = cube_from_array(data, header)
    assert np.allclose(np.diff(cube.velocity), 0.166, atol=1e-6)   # read back in km/s
    blank = np.isnan(data)
    assert 0.02 < blank.mean() < 0.4 and blank[:, :, 0].all()      # a border strip
    again = make_morph_cube(3, "morph_hard", shape=SMALL)[0]
    np.testing.assert_array_equal(np.isnan(again), blank)
    np.testing.assert_array_equal(again[~blank], data[~blank])
    assert not np.array_equal(make_morph_cube(4, "morph_hard", shape=SMALL)[0][~blank],
                              data[~blank])
    assert set(truth["kind"]) == {"compact", "large", "truncated", "filament"}
    assert models["extended"].max() > 8 * 0.15 and models["clumps"].max() > 8 * 0.15


def test_truncated_clumps_peak_outside_the_data(hard_cube):
    data, _, truth, _ = hard_cube
    t = truth[truth["kind"] == "truncated"]
    nv, ny, nx = data.shape
    for row in t:
        x, y = int(round(row["x"])), int(round(row["y"]))
        outside = not (0 <= x < nx and 0 <= y < ny)
        assert outside or np.isnan(data[int(row["z"]), y, x])


def test_detected_false_candidates_include_bright_structures(hard_cube):
    data, header, truth, models = hard_cube
    cube = cube_from_array(data, header)
    det = detect(cube, "clumpfind", 0.15)
    y = morph_truth(det.catalog, truth)
    kinds = candidate_kinds(det.catalog, truth, models, 0.15, y)
    snr = np.asarray(det.catalog["snr_peak"], float)
    assert 0.1 < y.mean() < 0.7
    assert np.sum((kinds == "extended") & (snr >= 5)) >= 20    # bright beads / fragments
    # SNR alone does not decide: some false candidates outshine the median true one
    assert np.sum(~y & (snr > np.median(snr[y]))) >= 10


def test_bad_settings_raise():
    with pytest.raises(SSClumpError, match="unknown preset"):
        make_morph_cube(0, "nope")
    with pytest.raises(SSClumpError, match="every side"):
        make_morph_cube(0, shape=(8, 64, 64))
    with pytest.raises(SSClumpError, match="rms"):
        make_morph_cube(0, rms=0.0)
