"""Candidate samples (METHOD.md section 1): placement, shrinking, noise, batching, cache."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from glue_ssclump.core.progress import Cancelled, Progress
from glue_ssclump.core.samples import (
    SAMPLE_SIZE,
    ArraySamples,
    CandidateSamples,
    SampleSource,
    ar1_noise,
    bounding_boxes,
    noise_lag1,
    zoom_cubic,
)

S = SAMPLE_SIZE


def _lag1(x: np.ndarray, axis: int = 0) -> float:
    a = np.moveaxis(x, axis, 0)
    return float(np.corrcoef(a[:-1].ravel(), a[1:].ravel())[0, 1])


@pytest.fixture(scope="module")
def field():
    """A noise cube (rms 0.2, lag-1 0.3) with a few hand-made candidates."""
    rng = np.random.default_rng(5)
    data = 0.2 * ar1_noise((40, 60, 70), 0.3, rng)
    mask = np.zeros(data.shape, dtype=np.int32)
    # id 7: a 3 x 4 x 5 block of known values
    block = (slice(10, 13), slice(20, 24), slice(30, 35))
    data[block] = np.arange(60, dtype=np.float32).reshape(3, 4, 5) / 10 + 2.0
    mask[block] = 7
    # id 3 shares id 7's bounding box corner: it must not leak into 7's sample
    mask[10, 20, 30] = 3
    data[10, 20, 30] = 99.0
    # id 9: 40 voxels long along x (shrunk to 30), a linear ramp
    mask[30:34, 40:46, 5:45] = 9
    data[30:34, 40:46, 5:45] = np.linspace(1.0, 5.0, 40, dtype=np.float32)
    # id 12: a small blob with one NaN voxel
    mask[2:5, 2:5, 2:5] = 12
    data[2:5, 2:5, 2:5] = 3.0
    data[3, 3, 3] = np.nan
    return data, mask


def test_small_candidate_is_centred_values_kept_noise_outside(field):
    data, mask = field
    src = CandidateSamples(data, mask, rms=0.2, lag1=0.3, seed=1)
    pos = int(np.flatnonzero(src.ids == 7)[0])
    raw = src.sample(pos, normalise=False)
    noise = src.noise_for(pos)
    assert raw.shape == (S, S, S) and raw.dtype == np.float32
    v0, y0, x0 = (S - 3) // 2, (S - 4) // 2, (S - 5) // 2
    assert (v0, y0, x0) == (13, 13, 12)
    placed = raw[v0:v0 + 3, y0:y0 + 4, x0:x0 + 5]
    inside = mask[10:13, 20:24, 30:35] == 7
    np.testing.assert_array_equal(placed[inside], data[10:13, 20:24, 30:35][inside])
    # the voxel of clump 3 inside the box and everything outside the box: noise
    assert placed[0, 0, 0] == noise[v0, y0, x0]
    outside = np.ones((S, S, S), bool)
    outside[v0:v0 + 3, y0:y0 + 4, x0:x0 + 5] = ~inside
    np.testing.assert_array_equal(raw[outside], noise[outside])
    assert 0.15 < raw[outside].std() < 0.25
    assert not np.any(raw == 99.0)
    # normalised sample = min-max of the raw one
    norm = src.get([pos])[0, 0]
    expect = (raw - raw.min()) / (raw.max() - raw.min())
    np.testing.assert_allclose(norm, expect, atol=1e-3)  # float16 cache (auto)


def test_long_candidate_is_shrunk_to_30(field):
    data, mask = field
    src = CandidateSamples(data, mask, rms=0.2, lag1=0.3, seed=1, cache=None)
    pos = int(np.flatnonzero(src.ids == 9)[0])
    assert tuple(src.shapes[pos]) == (4, 6, 40)
    raw = src.sample(pos, normalise=False)
    signal = raw != src.noise_for(pos)
    v, y, x = np.nonzero(signal)
    # 30/40 of (4, 6, 40) = (3, 4.5 -> 4, 30), centred
    assert (v.min(), v.max()) == (13, 15)
    assert (y.min(), y.max()) == (13, 16)
    assert (x.min(), x.max()) == (0, 29)
    # the cubic spline keeps the ramp: 1 K at one end, 5 K at the other, linear between
    profile = raw[14, 14, :]
    np.testing.assert_allclose(profile, np.linspace(1.0, 5.0, 30), atol=0.05)


@pytest.mark.parametrize("shape", [(40, 33, 50), (5, 31, 3), (1, 45, 1)])
def test_zoom_cubic_equals_ndimage_zoom(shape):
    from scipy import ndimage

    values = np.random.default_rng(1).normal(size=shape)
    target = tuple(max(1, round(n * 30 / max(shape))) for n in shape)
    expect = ndimage.zoom(values, np.array(target) / shape, order=3)
    got = zoom_cubic(values, target)
    assert got.shape == expect.shape == target
    np.testing.assert_allclose(got, expect, rtol=0, atol=1e-12)


def test_nan_voxels_count_as_outside_the_mask(field):
    data, mask = field
    src = CandidateSamples(data, mask, rms=0.2, lag1=0.3, seed=1)
    pos = int(np.flatnonzero(src.ids == 12)[0])
    raw = src.sample(pos, normalise=False)
    assert np.isfinite(raw).all()
    c = (S - 3) // 2
    assert raw[c + 1, c + 1, c + 1] == src.noise_for(pos)[c + 1, c + 1, c + 1]
    assert raw[c, c, c] == 3.0
    assert np.isfinite(src.get(np.arange(len(src)))).all()


def test_samples_are_normalised_to_unit_range(field):
    data, mask = field
    src = CandidateSamples(data, mask, rms=0.2, lag1=0.3, cache=None)
    x = src.get(np.arange(len(src)))
    assert x.shape == (len(src), 1, S, S, S) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() <= 1.0
    np.testing.assert_array_equal(x.min(axis=(1, 2, 3, 4)), 0.0)
    np.testing.assert_allclose(x.max(axis=(1, 2, 3, 4)), 1.0, atol=1e-6)


def test_reproducible_per_seed_and_independent_of_batching(field):
    data, mask = field
    a = CandidateSamples(data, mask, rms=0.2, lag1=0.3, seed=4, cache=None)
    b = CandidateSamples(data, mask, rms=0.2, lag1=0.3, seed=4, cache=None)
    c = CandidateSamples(data, mask, rms=0.2, lag1=0.3, seed=5, cache=None)
    full = a.get(np.arange(len(a)))
    np.testing.assert_array_equal(b.get(np.arange(len(b))), full)
    assert not np.array_equal(c.get([0]), full[:1])
    order = np.array([3, 0, 2, 1])
    np.testing.assert_array_equal(a.get(order), full[order])
    for size in (1, 3):
        for prefetch in (0, 2):
            got = np.empty_like(full)
            for idx, batch in b.batches(size, index=order, prefetch=prefetch):
                got[idx] = batch
            np.testing.assert_array_equal(got[order], full[order])
    # a clump's sample does not depend on which other clumps are in the source
    only = CandidateSamples(data, mask, clump_ids=[a.ids[2]], rms=0.2, lag1=0.3, seed=4)
    np.testing.assert_allclose(only.get([0]), full[2:3], atol=1e-3)


def test_background_noise_matches_rms_and_lag1():
    rng = np.random.default_rng(11)
    rms, lag = 0.3, 0.55
    data = (rms * ar1_noise((48, 64, 64), lag, rng)).astype(np.float32)
    mask = np.zeros(data.shape, dtype=np.int32)
    # 60 single-voxel candidates: the samples are almost all background
    flat = rng.choice(data.size, 60, replace=False)
    mask.flat[flat] = np.arange(1, 61)
    src = CandidateSamples(data, mask, rms=rms, seed=3, cache=None)
    assert src.lag1 == pytest.approx(lag, abs=0.03)  # measured from the cube
    noise = np.stack([src.noise_for(i) for i in range(len(src))])
    assert noise.std() == pytest.approx(rms, rel=0.03)
    assert _lag1(noise, axis=1) == pytest.approx(lag, abs=0.03)
    assert abs(_lag1(noise, axis=2)) < 0.05  # white across the sky
    assert abs(noise.mean()) < 0.02 * rms
    # different candidates get different noise
    assert not np.allclose(noise[0], noise[1])


def test_noise_lag1_robust_to_emission():
    rng = np.random.default_rng(2)
    data = 0.1 * ar1_noise((60, 80, 80), 0.25, rng)
    vv, yy, xx = np.mgrid[0:60, 0:80, 0:80]
    for v0, y0, x0 in [(20, 20, 20), (40, 55, 60), (30, 60, 15)]:
        data += 2.0 * np.exp(-((vv - v0) ** 2 / 18 + (yy - y0) ** 2 / 50 + (xx - x0) ** 2 / 50))
    assert noise_lag1(data, 0.1) == pytest.approx(0.25, abs=0.03)
    # all emission: nothing to measure -> the default
    assert noise_lag1(np.full((10, 20, 20), 5.0, np.float32), 0.1) == pytest.approx(0.4)
    assert noise_lag1(data, 0.1, default=0.1, min_pairs=10**9) == pytest.approx(0.1)


def test_float16_cache_matches_regenerated(field):
    data, mask = field
    fresh = CandidateSamples(data, mask, rms=0.2, lag1=0.3, cache=None)
    cached = CandidateSamples(data, mask, rms=0.2, lag1=0.3, cache="float16")
    idx = np.arange(len(fresh))
    first = cached.get(idx)
    again = cached.get(idx[::-1])
    assert cached._cache is not None and cached._cache.dtype == np.float16
    np.testing.assert_array_equal(again, first[::-1])
    np.testing.assert_allclose(first, fresh.get(idx), atol=6e-4)
    assert CandidateSamples(data, mask, rms=0.2, lag1=0.3).cache == "float16"


def test_auto_cache_off_for_many_candidates(field, monkeypatch):
    from glue_ssclump.core import samples

    data, mask = field
    monkeypatch.setattr(samples, "AUTO_CACHE_MAX", 2)
    src = CandidateSamples(data, mask, rms=0.2, lag1=0.3)
    assert src.cache is None
    src.get([0, 1])
    assert src._cache is None


def test_batches_cover_every_index_once(field):
    data, mask = field
    src = CandidateSamples(data, mask, rms=0.2, lag1=0.3)
    for size, prefetch in ((1, 0), (2, 1), (3, 2), (100, 1)):
        seen = np.concatenate([i for i, _ in src.batches(size, prefetch=prefetch)])
        np.testing.assert_array_equal(seen, np.arange(len(src)))
    order = np.random.default_rng(0).permutation(len(src))
    seen = [i for i, b in src.batches(3, index=order)]
    np.testing.assert_array_equal(np.concatenate(seen), order)
    assert [len(i) for i in seen] == [3, 1]
    assert list(src.batches(4, index=np.array([], dtype=int))) == []
    with pytest.raises(IndexError):
        src.get([len(src)])


def test_cancel_stops_batches_and_worker(field):
    data, mask = field
    src = CandidateSamples(data, mask, rms=0.2, lag1=0.3, cache=None)
    before = threading.active_count()
    progress = Progress()
    fractions = []
    progress.callback = lambda f, m: fractions.append(f)
    with pytest.raises(Cancelled):
        for k, _ in enumerate(src.batches(1, progress=progress, prefetch=2)):
            if k == 1:
                progress.cancel()
    assert threading.active_count() == before
    assert fractions and max(fractions) < 1.0


def test_bounding_boxes_match_np_nonzero():
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 40, (20, 30, 30)).astype(np.int32)
    mask[mask == 17] = 0
    boxes = bounding_boxes(mask)
    assert len(boxes) == 39 and boxes[16] is None
    for cid in (1, 5, 39):
        idx = np.nonzero(mask == cid)
        assert boxes[cid - 1] == tuple(slice(int(i.min()), int(i.max()) + 1) for i in idx)
    src = CandidateSamples(rng.normal(size=mask.shape), mask, rms=1.0, lag1=0.0)
    np.testing.assert_array_equal(src.ids, np.r_[1:17, 18:40])


def test_bad_inputs_are_reported(field):
    data, mask = field
    with pytest.raises(ValueError, match="not in the mask"):
        CandidateSamples(data, mask, clump_ids=[7, 8], rms=0.2)
    with pytest.raises(ValueError, match="shape"):
        CandidateSamples(data[:-1], mask, rms=0.2)
    with pytest.raises(ValueError, match="rms"):
        CandidateSamples(data, mask, rms=0.0)
    with pytest.raises(ValueError, match="cache"):
        CandidateSamples(data, mask, rms=0.2, cache="float32")


def test_rms_defaults_to_the_cube_estimate(field):
    data, mask = field
    src = CandidateSamples(data, mask)
    assert src.rms == pytest.approx(0.2, rel=0.1)
    assert src.lag1 == pytest.approx(0.3, abs=0.05)


def test_array_samples():
    arr = np.random.default_rng(0).random((5, S, S, S)).astype(np.float16)
    src = ArraySamples(arr, ids=[10, 11, 12, 13, 14])
    assert isinstance(src, SampleSource) and len(src) == 5
    x = src.get([4, 0])
    assert x.shape == (2, 1, S, S, S) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0, 0], arr[4].astype(np.float32))
    seen = np.concatenate([i for i, _ in src.batches(2)])
    np.testing.assert_array_equal(seen, np.arange(5))
    with pytest.raises(ValueError):
        ArraySamples(np.zeros((3, 1, 20, 30, 30)))


def test_l1448_clumpfind_candidates(l1448_cube, tests_data):
    mask = np.load(tests_data / "l1448_cupid_labels.npz")["clumpfind_cfg"]
    src = CandidateSamples.from_cube(l1448_cube, mask, rms=0.15, cache=None)
    assert len(src) == int(mask.max())
    # L1448's noise is nearly white along velocity (about 0 in emission-free areas)
    assert -0.05 < src.lag1 < 0.15
    x = src.get(np.arange(0, len(src), 7))
    assert np.isfinite(x).all() and x.min() == 0.0 and x.max() <= 1.0
    np.testing.assert_allclose(x.max(axis=(1, 2, 3, 4)), 1.0, atol=1e-6)
