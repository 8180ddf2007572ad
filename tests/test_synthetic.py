"""Synthetic PPV cubes: header, noise statistics, clumps, diffuse field, scoring, presets."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table
from astropy.wcs import WCS

from glue_ssclump.core.detectors import available_detectors, run_detector
from glue_ssclump.core.synthetic import (
    PRESET_FALSE_FRACTIONS,
    PRESETS,
    candidate_peaks,
    make_synthetic_cube,
    match_candidates,
    score_candidates,
    write_synthetic,
)


def _lag1(x: np.ndarray, axis: int) -> float:
    a = np.moveaxis(x, axis, 0)
    return float(np.corrcoef(a[:-1].ravel(), a[1:].ravel())[0, 1])


def test_header_and_truth_table():
    data, header, truth = make_synthetic_cube((16, 24, 32), n_clumps=5, seed=1)
    assert data.shape == (16, 24, 32) and data.dtype == np.float32
    w = WCS(header)
    assert w.wcs.ctype[0] == "GLON-CAR" and w.wcs.ctype[1] == "GLAT-CAR"
    assert w.wcs.ctype[2] == "VRAD" and header["CUNIT3"] == "km/s"
    assert header["BUNIT"] == "K"
    assert abs(header["CDELT1"]) * 3600 == pytest.approx(30.0)
    assert header["CDELT3"] == pytest.approx(0.166)
    assert len(truth) == 5
    for name, unit in [("x", u.pix), ("y", u.pix), ("z", u.pix), ("lon", u.deg),
                       ("lat", u.deg), ("vel", u.km / u.s), ("peak", u.K),
                       ("sigma_major", u.pix), ("sigma_minor", u.pix), ("pa", u.deg),
                       ("sigma_v", u.km / u.s), ("grad", u.km / u.s / u.pix)]:
        assert truth[name].unit == unit, name
    np.testing.assert_array_equal(truth["clump_id"], np.arange(1, 6))
    np.testing.assert_allclose(truth["peak"], truth["snr_peak"] * 0.15)
    assert np.all(truth["sigma_minor"] <= truth["sigma_major"])
    # world coordinates agree with the header's WCS
    lon, lat, vel = w.pixel_to_world_values(truth["x"], truth["y"], truth["z"])
    np.testing.assert_allclose(truth["lon"], lon)
    np.testing.assert_allclose(truth["vel"].quantity.to_value(u.m / u.s), vel)


def test_reproducible_per_seed():
    a = make_synthetic_cube((16, 32, 32), n_clumps=10, seed=3)
    b = make_synthetic_cube((16, 32, 32), n_clumps=10, seed=3)
    c = make_synthetic_cube((16, 32, 32), n_clumps=10, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    assert all(np.array_equal(a[2][k], b[2][k]) for k in a[2].colnames)
    assert not np.array_equal(a[0], c[0])


def test_noise_rms_and_correlations():
    data, header, _ = make_synthetic_cube((64, 96, 96), n_clumps=0, seed=2, rms=0.2,
                                          lag1=0.3, diffuse_peak=0.0)
    assert header["SYNRMS"] == 0.2
    assert data.std() == pytest.approx(0.2, rel=0.02)
    assert abs(data.mean()) < 0.01
    assert _lag1(data, 0) == pytest.approx(0.3, abs=0.02)
    # Gaussian beam of FWHM 2 px: neighbour correlation exp(-1 / (4 sigma^2)) = 0.707
    sigma = 2.0 / np.sqrt(8 * np.log(2))
    assert _lag1(data, 2) == pytest.approx(np.exp(-1 / (4 * sigma**2)), abs=0.02)
    assert _lag1(data, 1) == pytest.approx(np.exp(-1 / (4 * sigma**2)), abs=0.02)


def test_clump_shape_position_and_velocity_gradient():
    rms = 1e-4
    kw = dict(seed=5, rms=rms, diffuse_peak=0.0, snr_range=(1000.0, 1000.0),
              sigma_major_range=(3.0, 3.0), axis_ratio_range=(0.5, 0.5),
              sigma_v_range=(2.0, 2.0), grad_max=0.5)
    data, _, truth = make_synthetic_cube((48, 48, 48), n_clumps=1, **kw)
    row = truth[0]
    peak = np.unravel_index(np.argmax(data), data.shape)
    assert np.allclose(peak, [row["z"], row["y"], row["x"]], atol=0.75)
    # the voxel value is the model (rotated Gaussian with a velocity gradient) + noise
    t = np.radians(row["pa"])
    dz, dy, dx = np.array(peak) - [row["z"], row["y"], row["x"]]
    uu, ww = dx * np.cos(t) + dy * np.sin(t), -dx * np.sin(t) + dy * np.cos(t)
    sv, grad = row["sigma_v"] / 0.166, row["grad"] / 0.166
    model = row["peak"] * np.exp(-0.5 * ((uu / row["sigma_major"]) ** 2
                                         + (ww / row["sigma_minor"]) ** 2
                                         + ((dz - grad * uu) / sv) ** 2))
    assert data[peak] == pytest.approx(model, abs=5 * rms)
    # moment maps: orientation of the integrated map and the velocity gradient
    mom0 = data.sum(axis=0)
    mom0 = np.where(mom0 > 0.01 * mom0.max(), mom0, 0)  # no noise in the second moments
    yy, xx = np.mgrid[0:48, 0:48] - np.array([row["y"], row["x"]])[:, None, None]
    cxx, cyy, cxy = ((mom0 * q).sum() / mom0.sum() for q in (xx * xx, yy * yy, xx * yy))
    pa = np.degrees(0.5 * np.arctan2(2 * cxy, cxx - cyy)) % 180
    assert min(abs(pa - row["pa"]), 180 - abs(pa - row["pa"])) < 3
    zz = np.arange(48)[:, None, None]
    mom1 = (data * zz).sum(axis=0) / np.maximum(mom0, 1e-30)
    grad_chan = row["grad"] / 0.166
    for step in (-2, 2):
        y = int(round(row["y"] + step * np.sin(t)))
        x = int(round(row["x"] + step * np.cos(t)))
        du = (x - row["x"]) * np.cos(t) + (y - row["y"]) * np.sin(t)
        assert mom1[y, x] == pytest.approx(row["z"] + grad_chan * du, abs=0.1)


def test_diffuse_field_is_smooth_positive_and_scaled():
    kw = dict(n_clumps=0, seed=7, diffuse_scale=(3.0, 5.0), diffuse_cover=0.4)
    with_cloud, _, _ = make_synthetic_cube((40, 64, 64), diffuse_peak=4.0, **kw)
    without, _, _ = make_synthetic_cube((40, 64, 64), diffuse_peak=0.0, **kw)
    cloud = with_cloud - without  # same noise: separate random streams
    assert cloud.min() >= -1e-6
    assert cloud.max() == pytest.approx(4.0 * 0.15, rel=1e-4)
    assert 0.2 < (cloud > 1e-6).mean() < 0.6
    assert _lag1(cloud, 2) > 0.9 and _lag1(cloud, 0) > 0.9


def test_overlapping_clumps_exist():
    _, _, truth = make_synthetic_cube((64, 128, 128), seed=0)
    xy = np.column_stack([truth["x"], truth["y"]])
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    dz = np.abs(np.asarray(truth["z"])[:, None] - np.asarray(truth["z"])[None, :])
    np.fill_diagonal(d, np.inf)
    smaj = np.asarray(truth["sigma_major"])
    reach = 2 * (smaj[:, None] + smaj[None, :])
    assert ((d < reach) & (dz < 4)).any(axis=1).mean() > 0.2


def test_score_and_match_semantics():
    truth = Table({"x": [10.0, 30.0, 50.0], "y": [10.0, 30.0, 50.0], "z": [5.0, 5.0, 5.0],
                   "snr_peak": [10.0, 3.0, 6.0]})
    px = np.array([11, 30, 50, 10, 52, 50])
    py = np.array([11, 30, 50, 10, 52, 50])
    pz = np.array([6, 5, 7, 8, 5, 3])
    got = match_candidates((px, py, pz), truth)
    # 0: 1.4 px, 1 ch -> clump 0; 1: clump 1 has SNR 3; 2: 2 ch; 3: 3 ch too far;
    # 4: 2.8 px too far; 5: 2 ch below
    np.testing.assert_array_equal(got, [0, -1, 2, -1, -1, 2])
    np.testing.assert_array_equal(score_candidates((px, py, pz), truth), got >= 0)
    assert score_candidates((px, py, pz), truth, snr_min=2)[1]
    assert score_candidates((px, py, pz), truth, dchan=3)[3]
    cat = Table({"peak_x": px, "peak_y": py, "peak_z": pz})
    np.testing.assert_array_equal(score_candidates(cat, truth), got >= 0)
    with pytest.raises(ValueError, match="peak_x"):
        score_candidates(Table({"x": px}), truth)


def test_candidate_peaks():
    data = np.zeros((5, 6, 7), np.float32)
    mask = np.zeros(data.shape, np.int32)
    mask[1:3, 1:3, 1:3] = 1
    data[2, 1, 2] = 5.0
    mask[4, 5, 6] = 2
    data[4, 5, 6] = np.nan
    mask[0, 5, 5:7] = 2
    data[0, 5, 6] = 1.0
    x, y, z = candidate_peaks(data, mask)
    np.testing.assert_array_equal(x, [2, 6])
    np.testing.assert_array_equal(y, [1, 5])
    np.testing.assert_array_equal(z, [2, 0])


def test_write_synthetic_round_trip(tmp_path):
    from glue_ssclump.core.cube import read_cube

    cube_path, truth_path = write_synthetic(tmp_path / "syn", (16, 24, 24), n_clumps=4,
                                            seed=2)
    assert cube_path.name == "syn.fits" and truth_path.name == "syn_truth.ecsv"
    cube = read_cube(cube_path)
    data, _, truth = make_synthetic_cube((16, 24, 24), n_clumps=4, seed=2)
    np.testing.assert_array_equal(cube.data, data)
    assert cube.frame == "galactic" and cube.spectral_type == "VRAD"
    lon, lat, vel = cube.pixel_to_world(truth["x"], truth["y"], truth["z"])
    np.testing.assert_allclose(vel, truth["vel"].value, atol=1e-6)
    back = Table.read(truth_path)
    assert back["vel"].unit == u.km / u.s and back["grad"].unit == u.km / u.s / u.pix
    np.testing.assert_allclose(back["x"], truth["x"])
    paths = write_synthetic(tmp_path, (16, 24, 24), n_clumps=1)
    assert [p.name for p in paths] == ["synthetic.fits", "synthetic_truth.ecsv"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="preset"):
        make_synthetic_cube((16, 16, 16), preset="nope")
    with pytest.raises(ValueError, match="shape"):
        make_synthetic_cube((4, 16, 16))
    with pytest.raises(TypeError):
        make_synthetic_cube((16, 16, 16), no_such_setting=1)


def test_chunked_build_memory():
    """Peak numpy allocation stays near the cube size (chunked noise and diffuse field)."""
    tracemalloc.start()
    data, _, _ = make_synthetic_cube((64, 128, 128), n_clumps=50, seed=1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2.0 * data.nbytes + 40 * 2**20


@pytest.fixture(scope="module")
def small_cubes():
    return {p: make_synthetic_cube((40, 80, 80), seed=0, preset=p) for p in ("benchmark", "clean")}


@pytest.mark.parametrize("detector", ["clumpfind", "fellwalker", "dendrogram"])
def test_benchmark_preset_false_fraction(detector, small_cubes):
    """Paper settings on the 'benchmark' preset: 20-70 % of the candidates are false;
    on the 'clean' preset nearly none."""
    if detector not in available_detectors():
        pytest.skip(f"{detector} not installed")
    data, header, truth = small_cubes["benchmark"]
    mask = run_detector(data, detector, header["SYNRMS"]).mask
    ok = score_candidates(candidate_peaks(data, mask), truth)
    assert len(ok) >= 40
    assert 0.2 <= 1 - ok.mean() <= 0.7
    data, header, truth = small_cubes["clean"]
    mask = run_detector(data, detector, header["SYNRMS"]).mask
    ok = score_candidates(candidate_peaks(data, mask), truth)
    assert len(ok) >= 30 and 1 - ok.mean() < 0.1


def test_documented_presets():
    assert set(PRESET_FALSE_FRACTIONS) <= set(PRESETS)
    for detectors in PRESET_FALSE_FRACTIONS.values():
        for runs in detectors.values():
            for mean, lo, hi in runs.values():
                assert lo <= mean <= hi
    for runs in PRESET_FALSE_FRACTIONS["benchmark"].values():
        for _mean, lo, hi in runs.values():
            assert 0.2 <= lo and hi <= 0.7
