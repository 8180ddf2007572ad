"""ClumpFind: validation against CUPID's own mask of L1448, and synthetic cases.

``sequential_clumpfind`` below is an independent, voxel-by-voxel rendering of the CUPID
algorithm as documented in the detector's module docstring (a raster scan that grows
and merges regions, then shares them out or erodes them); the vectorised detector must
reproduce it exactly on small cubes, for every ``Naxis`` and both ``IDLAlg`` values.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from scipy import ndimage as ndi
from sklearn.metrics import adjusted_rand_score

from glue_ssclump.core.detectors import clumpfind as cf
from glue_ssclump.core.detectors.base import DetectorError
from glue_ssclump.core.detectors.clumpfind_scan import CORNER, EDGE, FACE, Clumps
from glue_ssclump.core.detectors.clumpfind_share import BRUTE_PAIRS, share_out
from glue_ssclump.core.detectors.registry import get_detector, run_detector
from glue_ssclump.core.progress import Cancelled, Progress

ROOT = Path(__file__).resolve().parents[1]
L1448 = ROOT / "glue_ssclump" / "data" / "l1448_13co.fits"
CUPID = ROOT / "tests" / "data" / "l1448_cupid_labels.npz"


# --------------------------------------------------------------------------- helpers
def gaussian_cube(shape, blobs, noise=0.0, seed=0):
    """Sum of 3D Gaussians ``(amp, (v, y, x), (sv, sy, sx))`` plus white noise."""
    rng = np.random.default_rng(seed)
    grids = np.indices(shape, dtype=np.float64)
    cube = noise * rng.standard_normal(shape)
    for amp, centre, sigma in blobs:
        arg = sum(((g - c) / s) ** 2 for g, c, s in zip(grids, centre, sigma, strict=True))
        cube += amp * np.exp(-0.5 * arg)
    return cube.astype(np.float32)


def peak_positions(data, mask):
    n = int(mask.max())
    return {tuple(p) for p in ndi.maximum_position(data, mask, np.arange(1, n + 1))}


def sequential_clumpfind(data, levels, naxis, idl, minpix, allow_edge=True, maxbad=0.05):
    """Voxel-by-voxel ClumpFind (slow; for cross-checking small cubes only)."""
    nv, ny, nx = data.shape
    steps = [s for s in FACE + EDGE + CORNER
             if sum(map(abs, s)) <= naxis]
    ipa = np.zeros(data.shape, dtype=np.int64)
    peak, vpeak = {}, {}
    next_id = 1

    def inside(p):
        return 0 <= p[0] < nv and 0 <= p[1] < ny and 0 <= p[2] < nx

    def d2(a, b):
        return sum((i - j) ** 2 for i, j in zip(a, b, strict=True))

    def nearest_old(p, hindex):
        best, dbest = 0, None
        for s in steps:
            q = (p[0] + s[0], p[1] + s[1], p[2] + s[2])
            if not inside(q) or not 0 < ipa[q] < hindex:
                continue
            c = int(ipa[q])
            if best == 0:
                best, dbest = c, None
                continue
            if dbest is None:
                dbest = d2(peak[best], q)
            dc = d2(peak[c], q)
            if dc < dbest:
                best, dbest = c, dc
        return best

    for li, level in enumerate(levels[::-1]):
        lowest = li == len(levels) - 1
        hindex = next_id
        sets = {}  # id -> dict(pix=[...], nebs=[...], peak, vpeak)
        for x, y, v in itertools.product(range(nx), range(ny), range(nv)):
            p = (v, y, x)
            if ipa[p] != 0 or not float(data[p]) >= level:
                continue
            same = sorted({int(ipa[q]) for s in steps
                           for q in [(v + s[0], y + s[1], x + s[2])]
                           if inside(q) and ipa[q] >= hindex})
            if not same:
                sid = next_id
                next_id += 1
                sets[sid] = {"pix": [], "nebs": [], "peak": p, "vpeak": -np.inf}
            else:
                sid = same[0]
                for other in same[1:]:
                    o = sets.pop(other)
                    for q in o["pix"]:
                        ipa[q] = sid
                    sets[sid]["pix"] += o["pix"]
                    sets[sid]["nebs"] += o["nebs"]
                    if o["vpeak"] > sets[sid]["vpeak"]:
                        sets[sid]["peak"], sets[sid]["vpeak"] = o["peak"], o["vpeak"]
            st = sets[sid]
            st["pix"].append(p)
            ipa[p] = sid
            if data[p] > st["vpeak"]:
                st["peak"], st["vpeak"] = p, float(data[p])
            if idl:
                il2 = nearest_old(p, hindex)
                if il2:
                    st["nebs"].append(il2)
        for sid in sorted(sets, reverse=True):
            st = sets[sid]
            if idl and st["nebs"]:
                cand = sorted(set(st["nebs"]))
                for q in st["pix"]:
                    ipa[q] = min(cand, key=lambda c, q=q: (d2(peak[c], q), c))
                continue
            left = list(st["pix"])
            while not idl:
                moves = [(q, nearest_old(q, sid)) for q in left]
                moves = [(q, c) for q, c in moves if c]
                if not moves:
                    break
                for q, c in moves:
                    ipa[q] = c
                moved = {q for q, _ in moves}
                left = [q for q in left if q not in moved]
            if not left:
                continue
            if not idl and lowest:
                for q in left:
                    ipa[q] = 0
                continue
            peak[sid], vpeak[sid] = st["peak"], st["vpeak"]

    out = np.zeros(data.shape, dtype=np.int32)
    survivors = []
    for cid in sorted(peak):
        vox = np.argwhere(ipa == cid)
        if len(vox) < minpix:
            continue
        extent = vox.max(0) - vox.min(0)
        if any(e == 0 and n > 1 for e, n in zip(extent, data.shape, strict=True)):
            continue
        if not allow_edge and any(
                (vox[:, a] == 0).any() or (vox[:, a] == data.shape[a] - 1).any()
                for a in range(3)):
            continue
        nbad = sum(1 for v, y, x in vox if 0 < v < nv - 1
                   and (np.isnan(data[v - 1, y, x]) or np.isnan(data[v + 1, y, x])))
        if nbad > maxbad * len(vox):
            continue
        survivors.append(cid)
    survivors.sort(key=lambda c: -vpeak[c])  # stable: older clump first among equals
    for new, cid in enumerate(survivors, start=1):
        out[ipa == cid] = new
    return out


# ----------------------------------------------------------------- real data, CUPID
@pytest.fixture(scope="module")
def l1448():
    data = np.squeeze(fits.getdata(L1448)).astype(np.float32)
    ref = np.load(CUPID)
    return data, ref["clumpfind_cfg"], json.loads(str(ref["meta"]))


@pytest.fixture(scope="module")
def l1448_result(l1448):
    data, _, meta = l1448
    return run_detector(data, "clumpfind", meta["rms"])  # the rms-unit defaults


def test_l1448_matches_cupid(l1448, l1448_result):
    data, ref, meta = l1448
    ours = l1448_result.mask
    assert meta["runs"]["clumpfind_cfg"]["config"]["TLOW"] == pytest.approx(
        l1448_result.params["Tlow"])
    n_ref, n_ours = int(ref.max()), int(ours.max())
    assert abs(n_ours - n_ref) <= 0.1 * n_ref, (n_ours, n_ref)

    ref_peaks = peak_positions(data, ref)
    found = len(ref_peaks & peak_positions(data, ours)) / len(ref_peaks)
    assert found >= 0.9, found

    either = (ref > 0) | (ours > 0)
    ari = adjusted_rand_score(ref[either], ours[either])
    assert ari >= 0.8, ari


def test_l1448_mask_is_cupids_exactly(l1448, l1448_result):
    """Not only close: every voxel and clump number agrees with CUPID's mask."""
    _, ref, _ = l1448
    assert l1448_result.mask.dtype == np.int32
    np.testing.assert_array_equal(l1448_result.mask, ref)


# ------------------------------------------------------------------------ synthetic
def test_two_separated_blobs_give_two_clumps():
    data = gaussian_cube((20, 30, 40), [(10.0, (10, 15, 10), (2, 2.5, 2.5)),
                                        (8.0, (9, 14, 30), (2, 2.5, 2.5))])
    mask = cf.clumpfind(data, 1.0, 2.0, minpix=27)
    assert mask.max() == 2
    assert mask[10, 15, 10] == 1 and mask[9, 14, 30] == 2  # numbered by peak
    assert peak_positions(data, mask) == {(10, 15, 10), (9, 14, 30)}


def test_blended_blobs_are_split_at_the_saddle():
    data = gaussian_cube((20, 30, 40), [(10.0, (10, 15, 16), (2, 3, 3)),
                                        (9.0, (10, 15, 24), (2, 3, 3))])
    above = data >= 1.0
    assert ndi.label(above)[1] == 1  # one connected emission region
    mask = cf.clumpfind(data, 1.0, 1.0, minpix=27)
    assert mask.max() == 2
    assert mask[10, 15, 16] == 1 and mask[10, 15, 24] == 2
    assert np.array_equal(mask > 0, above)  # the region is shared out completely
    # IDLAlg=1 gives every voxel to the nearer peak.
    assert (mask[10, 15, 17:20] == 1).all() and (mask[10, 15, 21:24] == 2).all()


def test_minpix_drops_small_clumps():
    data = gaussian_cube((20, 30, 40), [(10.0, (10, 15, 10), (2, 2.5, 2.5)),
                                        (4.0, (10, 15, 30), (0.8, 0.8, 0.8))])
    small = int((data[:, :, 22:] >= 1.0).sum())
    assert 1 < small < 27
    assert cf.clumpfind(data, 1.0, 2.0, minpix=27).max() == 1
    kept = cf.clumpfind(data, 1.0, 2.0, minpix=small)
    assert kept.max() == 2 and (kept == 2).sum() == small


def test_thin_clumps_are_rejected():
    data = np.zeros((10, 12, 12), dtype=np.float32)
    data[4, 2:10, 2:10] = 5.0  # 64 voxels, but a single channel
    data[4, 5, 5] = 6.0
    assert cf.clumpfind(data, 1.0, 1.0, minpix=5).max() == 0
    data[5, 2:10, 2:10] = 5.0
    assert cf.clumpfind(data, 1.0, 1.0, minpix=5).max() == 1


def test_naxis_sets_connectivity():
    data = np.zeros((8, 8, 8), dtype=np.float32)
    data[0:3, 0:3, 0:3] = 5.0
    data[3:6, 3:6, 3:6] = 4.0  # touches the first block at one corner only
    data[1, 1, 1] = 6.0
    data[4, 4, 4] = 6.0
    counts = {n: cf.clumpfind(data, 1.0, 10.0, minpix=27, naxis=n).max() for n in (1, 2, 3)}
    assert counts == {1: 2, 2: 2, 3: 1}
    with pytest.raises(DetectorError):
        cf.clumpfind(data, 1.0, 10.0, naxis=4)


def test_allow_edge():
    data = gaussian_cube((20, 30, 40), [(10.0, (10, 15, 0), (2, 2.5, 2.5)),
                                        (10.0, (10, 15, 20), (2, 2.5, 2.5))])
    assert cf.clumpfind(data, 1.0, 2.0, allow_edge=True).max() == 2
    edge_free = cf.clumpfind(data, 1.0, 2.0, allow_edge=False)
    assert edge_free.max() == 1 and edge_free[10, 15, 20] == 1


def test_blank_voxels_and_maxbad():
    data = gaussian_cube((20, 30, 40), [(10.0, (10, 15, 10), (2, 2.5, 2.5)),
                                        (10.0, (10, 15, 30), (2, 2.5, 2.5))])
    data[:, :, 34:] = np.nan  # a blank edge through the second blob
    data[0:6, 20:, :] = np.nan  # and a blank corner away from both
    mask = run_detector(data, "clumpfind", 1.0, {"Tlow": 1.0, "DeltaT": 2.0}).mask
    assert mask.max() == 2
    assert (mask[np.isnan(data)] == 0).all()

    # Blank channels next to the second blob: CUPID's MaxBad looks along v.
    data[:, :, 34:] = 0.0
    data[6, :, 22:] = np.nan
    nearby = run_detector(data, "clumpfind", 1.0, {"Tlow": 1.0, "DeltaT": 2.0}).mask
    assert nearby.max() == 1 and nearby[10, 15, 10] == 1
    lenient = run_detector(data, "clumpfind", 1.0,
                           {"Tlow": 1.0, "DeltaT": 2.0, "MaxBad": 1.0}).mask
    assert lenient.max() == 2


def test_idlalg_zero_drops_clumps_born_at_the_lowest_level():
    data = gaussian_cube((20, 30, 40), [(10.0, (10, 15, 10), (2, 2.5, 2.5)),
                                        (2.5, (10, 15, 30), (2, 2.5, 2.5))])
    # Levels 1, 3, 5, ...: the second blob (peak 2.5) appears only at the lowest level.
    assert cf.clumpfind(data, 1.0, 2.0, idl=True).max() == 2
    assert cf.clumpfind(data, 1.0, 2.0, idl=False).max() == 1


@pytest.mark.parametrize("naxis", [1, 2, 3])
@pytest.mark.parametrize("idl", [True, False])
def test_matches_sequential_algorithm(naxis, idl):
    rng = np.random.default_rng(naxis + 10 * idl)
    shape = (9, 11, 13)
    blobs = [(rng.uniform(2, 6), rng.uniform(0, shape), rng.uniform(1.0, 2.5, 3))
             for _ in range(6)]
    data = gaussian_cube(shape, blobs, noise=0.3, seed=naxis)
    data[0, 0:3, :] = np.nan
    levels = cf.contour_levels(float(np.nanmax(data)), 0.6, 0.5)
    expected = sequential_clumpfind(data, levels, naxis, idl, minpix=4)
    got = cf.clumpfind(data, 0.6, 0.5, minpix=4, naxis=naxis, idl=idl)
    assert expected.max() >= 3  # a case with several clumps and merges
    np.testing.assert_array_equal(got, expected)


def test_share_out_tree_agrees_with_exhaustive_search():
    rng = np.random.default_rng(3)
    clumps = Clumps()
    cand = clumps.add(rng.integers(0, 30, (1500, 3)), rng.random(1500))
    coords = rng.integers(0, 30, (3000, 3))
    assert coords.shape[0] * cand.size > BRUTE_PAIRS  # takes the k-d tree path
    got = share_out(coords, cand, clumps)
    d2 = ((coords[:, None, :] - clumps.peak[cand][None]) ** 2).sum(-1)
    np.testing.assert_array_equal(got, cand[np.argmin(d2, axis=1)])


def test_contour_levels_follow_cupid():
    levels = cf.contour_levels(4.0023365, 0.44999999999999996, 0.3)
    assert levels.size == 12 and levels[0] == 0.44999999999999996
    assert np.allclose(np.diff(levels), 0.3)
    assert cf.contour_levels(1.0, 2.0, 0.3).size == 0
    with pytest.raises(DetectorError):
        cf.contour_levels(1.0, 0.0, 0.0)
    with pytest.raises(DetectorError):
        cf.contour_levels(1e9, 0.0, 1e-6)


def test_nothing_above_tlow_and_all_blank():
    data = np.zeros((5, 6, 7), dtype=np.float32)
    assert cf.clumpfind(data, 1.0, 1.0).max() == 0
    assert cf.clumpfind(np.full((5, 6, 7), np.nan, np.float32), 1.0, 1.0).max() == 0


def test_infinite_values_are_blank():
    data = gaussian_cube((20, 30, 40), [(10.0, (10, 15, 10), (2, 2.5, 2.5))])
    expected = cf.clumpfind(data, 1.0, 2.0)
    data[0, 0, 39] = np.inf
    got = cf.clumpfind(data, 1.0, 2.0)
    np.testing.assert_array_equal(got, expected)


def test_parameters_use_cupid_names_and_rms_units():
    det = get_detector("clumpfind")
    resolved = det.resolve(None, 0.15)
    assert resolved["Tlow"] == pytest.approx(0.45)
    assert resolved["DeltaT"] == pytest.approx(0.30)
    assert resolved["Noise"] == pytest.approx(0.30)
    assert resolved["MinPix"] == 27 and resolved["Naxis"] == 3
    assert resolved["AllowEdge"] is True and resolved["IDLAlg"] is True
    assert resolved["MaxBad"] == 0.05
    assert resolved["FwhmBeam"] == 2.0 and resolved["VeloRes"] == 2.0
    assert det.resolve({"idlalg": "0", "tlow": "4rms"}, 0.5)["Tlow"] == pytest.approx(2.0)


def test_progress_reports_levels_and_cancel_raises():
    data = gaussian_cube((20, 30, 40), [(10.0, (10, 15, 10), (2, 2.5, 2.5)),
                                        (8.0, (9, 14, 30), (2, 2.5, 2.5))])
    seen = []
    progress = Progress(lambda f, m: seen.append((f, m)), min_interval=0.0)
    cf.clumpfind(data, 1.0, 1.0, progress=progress)
    assert sum("level" in m for _, m in seen) >= 5
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and seen[-1][0] == 1.0

    def cancel_at_third_level(fraction, message):
        if "level 3/" in message:
            progress.cancel()

    progress = Progress(cancel_at_third_level, min_interval=0.0)
    with pytest.raises(Cancelled):
        run_detector(data, "clumpfind", 1.0, {"Tlow": 1.0, "DeltaT": 1.0},
                     progress=progress)
