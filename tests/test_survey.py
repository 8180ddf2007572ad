"""``ssclump survey``: tiled == untiled, resume after kills, bad inputs, verification.

One module-scoped LocalCluster (2 single-threaded worker processes, with nannies so a
worker can be killed and restarted) serves every test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from distributed import Client, LocalCluster

from glue_ssclump.cli import main as cli_main
from glue_ssclump.core.cube import estimate_rms, read_cube
from glue_ssclump.core.pipeline import detect
from glue_ssclump.core.survey import (
    CubeInfo,
    IslandRule,
    island_mask,
    plan_tiles,
    read_tile_result,
    recommended_halo,
    run_survey,
    unsettled_islands,
)
from glue_ssclump.core.survey.tile import PLUGIN_NAME
from glue_ssclump.core.synthetic import make_synthetic_cube

SHAPE = (16, 96, 96)
TILE = (48, 48)          # 4 tiles
HALO = 6                 # small on purpose: the long clump below needs a grown window
DEFAULT_MODEL = Path(__file__).parents[1] / "glue_ssclump" / "data" / "ss3dclump_default.pt"


def _add_gauss(data, z, y, x, sz, sy, sx, peak):
    zz, yy, xx = np.ogrid[:data.shape[0], :data.shape[1], :data.shape[2]]
    data += (peak * np.exp(-0.5 * (((zz - z) / sz) ** 2 + ((yy - y) / sy) ** 2
                                   + ((xx - x) / sx) ** 2))).astype(np.float32)


def _cube(path: Path, seed: int, shape=SHAPE, **header_changes) -> Path:
    data, header, _ = make_synthetic_cube(shape, seed=seed, preset="clean", n_clumps=16)
    rms = 0.15
    ny, nx = shape[1:]
    # Clumps on the tile borders (y = 48, x = 48 for 48 x 48 tiles), on the corner, and
    # one long clump (x sigma 7 px) across a border, wider than the halo allows.
    _add_gauss(data, 8, ny // 2, nx // 2, 2.0, 2.0, 2.0, 20 * rms)
    _add_gauss(data, 7, ny // 2 - 0.5, 20, 2.0, 2.0, 2.5, 15 * rms)
    _add_gauss(data, 9, 70, nx // 2 + 0.5, 2.0, 2.5, 2.0, 12 * rms)
    _add_gauss(data, 8, 24, nx // 2 - 1, 2.0, 2.0, 7.0, 10 * rms)
    header.update(header_changes)
    fits.PrimaryHDU(data, header).writeto(path, overwrite=True)
    return path


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None, memory_limit="3GiB")
    with Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def cubes(tmp_path_factory):
    root = tmp_path_factory.mktemp("survey_cubes")
    return {"a": _cube(root / "a.fits", 1), "b": _cube(root / "b.fits", 2),
            "root": root}


def _mask(result) -> np.ndarray:
    (path,) = (result.out / "cubes").glob("*/mask.fits")
    return np.asarray(fits.getdata(path))


def _assert_same_catalog(a, b, skip=("tile", "survey_id")):
    assert a.colnames == b.colnames and len(a) == len(b)
    for name in a.colnames:
        if name in skip:
            continue
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.dtype.kind == "f":
            # Centroids are summed in window coordinates and shifted: equal to rounding.
            np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-10, err_msg=name)
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)


# -- the border rule -------------------------------------------------------------------------
def test_tiles_partition_the_cube_and_halo_rule():
    info = CubeInfo("x.fits", 0, (5, 100, 70), 1.0, 0.4, "VRAD", 0.1, 0.0, "galactic", "x")
    tiles = plan_tiles(info, (32, 32), 5)
    owner = np.zeros((100, 70), dtype=int)
    for t in tiles:
        (_, _), (y0, y1), (x0, x1) = t.core
        owner[y0:y1, x0:x1] += 1
        (_, _), (wy0, wy1), (wx0, wx1) = t.window
        assert (wy0, wx0) == (max(0, y0 - 5), max(0, x0 - 5))
        assert (wy1, wx1) == (min(100, y1 + 5), min(70, x1 + 5))
    assert len(tiles) == 4 * 3 and np.all(owner == 1)  # half-open cores: one owner each
    assert recommended_halo(9) == 24


def test_an_island_is_unsettled_near_an_open_face_only():
    data = np.zeros((5, 20, 20), np.float32)
    mask = np.zeros(data.shape, np.int32)
    data[1:4, 1:4, 8:11] = 5.0
    mask[1:4, 1:4, 8:11] = 1                   # 1 voxel from the y-lo face
    data[1:4, 10:13, 10:13] = 5.0
    mask[1:4, 10:13, 10:13] = 2                # well inside...
    data[2, 13:19, 12] = 4.0                     # ...but its island runs to y = 18
    data[2, 8, 2] = 1.0                          # below the level: no island
    rule = IslandRule(level=3.0, radius=1, margin=2)
    isl = island_mask(data, rule, mask)
    assert isl.max() == 2 and isl[2, 8, 2] == 0
    one, two = isl[2, 2, 9], isl[2, 11, 11]
    closed = ((False, False),) * 3
    assert not unsettled_islands(isl, rule, closed)[[one, two]].any()  # cube faces
    y_open = ((False, False), (True, True), (False, False))
    assert unsettled_islands(isl, rule, y_open)[[one, two]].all()
    y_lo_open = ((False, False), (True, False), (False, False))
    assert unsettled_islands(isl, rule, y_lo_open)[[one, two]].tolist() == [True, False]
    # FellWalker-like radius: islands 3 voxels apart are one.
    far = IslandRule(level=3.0, radius=4, margin=2)
    data2 = np.zeros((5, 20, 20), np.float32)
    data2[2, 5, 5] = data2[2, 5, 8] = 5.0
    assert island_mask(data2, far, np.zeros_like(mask)).max() == 1
    assert island_mask(data2, rule, np.zeros_like(mask)).max() == 2


# -- tiled == untiled ------------------------------------------------------------------------
@pytest.mark.parametrize("method, params", [
    ("clumpfind", {}), ("fellwalker", {}), ("dendrogram", {}),
    ("clumpfind", {"AllowEdge": 0}),  # the edge test applies at the cube's faces only
])
def test_tiled_equals_untiled(client, cubes, tmp_path, method, params):
    path = os.fspath(cubes["a"])
    untiled = run_survey([path], method, tmp_path / "untiled", tile=(200, 200), halo=HALO,
                         client=client, params=params)
    tiled = run_survey([path], method, tmp_path / "tiled", tile=TILE, halo=HALO,
                       client=client, params=params)
    assert untiled.ok and tiled.ok and tiled.tiles_total == 4 and untiled.tiles_total == 1
    assert len(tiled.unresolved) == 0
    _assert_same_catalog(untiled.catalog, tiled.catalog)
    np.testing.assert_array_equal(_mask(untiled), _mask(tiled))

    # The same clumps as a plain untiled detection at the same rms.
    cube = read_cube(path)
    assert tiled.cubes[0].rms == estimate_rms(cube.data)  # one global rms, as `detect`'s
    det = detect(cube, method, rms=tiled.cubes[0].rms, params=params)
    mask = _mask(tiled)
    assert len(det.catalog) == len(tiled.catalog) > 10
    pairs = np.unique(np.stack([det.mask.ravel(), mask.ravel()]), axis=1)
    assert pairs.shape[1] == len(det.catalog) + 1        # a bijection of the ids
    peaks = {tuple(r) for r in np.stack([det.catalog[c] for c in ("peak_z", "peak_y",
                                                                  "peak_x")], 1).tolist()}
    assert peaks == {tuple(r) for r in np.stack(
        [tiled.catalog[c] for c in ("peak_z", "peak_y", "peak_x")], 1).tolist()}

    # Clumps really cross the borders, and a window really had to grow.
    crossing = 0
    for cid in np.asarray(tiled.catalog["clump_id"]):
        ys, xs = np.nonzero((mask == cid).any(axis=0))
        crossing += (ys.min() < 48 <= ys.max()) or (xs.min() < 48 <= xs.max())
    assert crossing >= 3
    assert max(s["windows"] for s in tiled.summaries) >= 2


# -- resume -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference(client, cubes, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    res = run_survey([os.fspath(cubes["a"]), os.fspath(cubes["b"])], "clumpfind", out,
                     tile=(24, 24), halo=HALO, client=client)
    assert res.ok and res.tiles_total == 32
    return res


def test_rerun_skips_finished_tiles_and_ignores_partial_files(client, cubes, reference,
                                                              tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(reference.out, out)
    tiles = sorted(out.glob("cubes/*/tiles-*/t*.npz"))
    for f in tiles[:3]:
        f.unlink()
    # What a kill during a write leaves: a hidden temporary file, and no merged outputs.
    (tiles[0].parent / f".{tiles[0].name}.1234.tmp.npz").write_bytes(b"PK\x03\x04 partial")
    (out / "survey_catalog.fits").unlink()
    res = run_survey([os.fspath(cubes["a"]), os.fspath(cubes["b"])], "clumpfind", out,
                     tile=(24, 24), halo=HALO, client=client)
    assert (res.tiles_run, res.tiles_skipped) == (3, 29)
    _assert_same_catalog(reference.catalog, res.catalog, skip=())
    assert len(read_tile_result(tiles[0]).catalog) >= 0

    # A damaged result file: that cube is reported and the file removed; the next run
    # recomputes the tile and the catalogue is whole again.
    tiles[5].write_bytes(b"not a tile result")
    res = run_survey([os.fspath(cubes["a"]), os.fspath(cubes["b"])], "clumpfind", out,
                     tile=(24, 24), halo=HALO, client=client)
    (name, msg), = res.failures.items()
    assert "unreadable" in msg and not tiles[5].exists()
    assert 0 < len(res.catalog) < len(reference.catalog)
    res = run_survey([os.fspath(cubes["a"]), os.fspath(cubes["b"])], "clumpfind", out,
                     tile=(24, 24), halo=HALO, client=client)
    assert res.ok and res.tiles_run == 1
    _assert_same_catalog(reference.catalog, res.catalog, skip=())


def test_worker_killed_mid_run_then_catalogue_unchanged(client, cubes, reference, tmp_path):
    killed = []

    def on_event(kind, info):
        if kind == "tile" and not killed:
            busy = [w for w, keys in client.processing().items() if keys]
            if busy:  # kill a worker process that holds tiles (its nanny restarts it)
                client.restart_workers(busy[:1])
                killed.append(busy[0])

    res = run_survey([os.fspath(cubes["a"]), os.fspath(cubes["b"])], "clumpfind",
                     tmp_path / "out", tile=(24, 24), halo=HALO, client=client,
                     on_event=on_event)
    assert killed and res.ok and res.tiles_run == 32
    _assert_same_catalog(reference.catalog, res.catalog, skip=())


def test_client_killed_mid_run_then_rerun_resumes(client, cubes, reference, tmp_path):
    out = tmp_path / "out"
    script = (
        "import sys\n"
        "from glue_ssclump.core.survey import run_survey\n"
        f"run_survey({[os.fspath(cubes['a']), os.fspath(cubes['b'])]!r}, 'clumpfind', "
        f"{os.fspath(out)!r}, tile=(24, 24), halo={HALO}, workers=1, processes=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("cubes/*/tiles-*/t*.npz")):
            assert proc.poll() is None, "the survey process ended before writing a tile"
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the client and its in-process cluster
        except ProcessLookupError:
            pass
        proc.wait()
    done_before = len(list(out.glob("cubes/*/tiles-*/t*.npz")))
    res = run_survey([os.fspath(cubes["a"]), os.fspath(cubes["b"])], "clumpfind", out,
                     tile=(24, 24), halo=HALO, client=client)
    assert res.ok and res.tiles_skipped >= done_before >= 1
    assert res.tiles_run + res.tiles_skipped == 32
    _assert_same_catalog(reference.catalog, res.catalog, skip=())


# -- bad input and failed tiles ---------------------------------------------------------------
def test_bad_inputs_reported_per_file_while_the_rest_completes(client, cubes, tmp_path,
                                                                capsys):
    image = tmp_path / "image2d.fits"
    fits.PrimaryHDU(np.ones((20, 20), np.float32)).writeto(image)
    wide = _cube(tmp_path / "wide.fits", 3, CDELT3=0.332)   # channels twice as wide
    missing = tmp_path / "missing.fits"
    argv = ["survey", os.fspath(cubes["a"]), os.fspath(missing), os.fspath(image),
            os.fspath(wide), "--out", os.fspath(tmp_path / "out"), "--tile", "48,48",
            "--halo", str(HALO), "--scheduler", client.scheduler.address, "--quiet"]
    assert cli_main(argv) == 1
    text = capsys.readouterr().out
    assert "dask dashboard" in text or "tiles" in text
    assert "missing.fits: no such file" in text
    assert "image2d.fits: this is a 2D image" in text
    assert "wide.fits: channel width 0.332 km/s differs" in text
    from glue_ssclump.core.catalog import read_catalog

    cat = read_catalog(tmp_path / "out" / "survey_catalog.fits")
    assert len(cat) > 10 and set(cat["source_file"]) == {os.fspath(cubes["a"])}
    assert {"survey_id", "source_file", "tile", "detector", "params",
            "package_version"} <= set(cat.colnames)
    assert list(cat["survey_id"]) == list(range(1, len(cat) + 1))


def test_failing_tile_retried_then_listed_while_others_finish(client, tmp_path):
    data = np.random.default_rng(0).normal(0, 0.15, (8, 64, 64)).astype(np.float32)
    _add_gauss(data, 4, 10, 10, 1.5, 1.5, 1.5, 100.0)
    _, header, _ = make_synthetic_cube((8, 64, 64), seed=0, preset="clean", n_clumps=0)
    path = tmp_path / "bright.fits"
    fits.PrimaryHDU(data, header).writeto(path)
    # Contour levels every 0.5 mK up to 100 K: too many in the bright tile only.
    res = run_survey([os.fspath(path)], "clumpfind", tmp_path / "out", tile=(32, 32),
                     halo=4, client=client, retries=1,
                     params={"Tlow": 5.0, "DeltaT": 0.0005})
    assert res.tiles_total == 4 and res.tiles_run == 3
    (name, msg), = res.failures.items()
    assert name.endswith("t000_000") and "contour levels" in msg


# -- verification on the workers -------------------------------------------------------------
@pytest.mark.parametrize("kind", ["ensemble", "corrupt"])
def test_unusable_models_are_refused_before_any_cluster(kind, cubes, tmp_path):
    """An ensemble checkpoint (what `ssclump verify` saves by default) or a broken file
    is named with the fix before a cluster starts."""
    from glue_ssclump.core.survey import SurveyInputError

    path = tmp_path / "model.pt"
    if kind == "ensemble":
        from glue_ssclump.core.checkpoint import save_checkpoint
        from glue_ssclump.core.ensemble import EnsembleNet

        save_checkpoint(path, EnsembleNet())
        match = "arch='ensemble' checkpoint.*--arch paper"
    else:
        path.write_bytes(b"not a checkpoint")
        match = "not a readable PyTorch file"
    with pytest.raises(SurveyInputError, match=match):
        run_survey([cubes["a"]], "clumpfind", tmp_path / "out", verify=path,
                   scheduler="tcp://127.0.0.1:1")


def test_verify_tiled_equals_untiled_model_loaded_once_per_worker(client, cubes, tmp_path):
    path = os.fspath(cubes["b"])
    kw = dict(verify=DEFAULT_MODEL, halo=HALO, client=client, device="cpu")
    untiled = run_survey([path], "clumpfind", tmp_path / "u", tile=(200, 200), **kw)
    tiled = run_survey([path], "clumpfind", tmp_path / "t", tile=TILE, **kw)
    assert {"p_clump", "verdict"} <= set(tiled.catalog.colnames)
    p = np.asarray(tiled.catalog["p_clump"])
    assert np.all((p >= 0) & (p <= 1)) and np.ptp(p) > 0
    # Batches differ between tilings: float32 inference agrees to rounding.
    np.testing.assert_allclose(p, np.asarray(untiled.catalog["p_clump"]), atol=1e-5)
    loaded = client.run(lambda dask_worker: dask_worker.plugins[PLUGIN_NAME].model
                        is not None)
    assert all(loaded.values())


def test_glue_opens_one_cube_of_the_survey_and_the_merged_catalogue(reference, cubes):
    from glue.core import DataCollection
    from glue.core.data_factories import load_data

    from glue_ssclump.core.survey import open_survey_cube
    from glue_ssclump.integration.factory import make_candidate_pair

    cube, mask, catalog = open_survey_cube(reference.out, cubes["b"])
    cube_data, cat_data = make_candidate_pair(cube, mask, catalog, "b")
    dc = DataCollection([cube_data, cat_data])
    assert len(dc) == 2 and cat_data.size == len(catalog) > 10
    assert set(np.unique(mask)) - {0} == set(np.asarray(catalog["clump_id"]))
    merged = load_data(os.fspath(reference.out / "survey_catalog.fits"))
    assert merged.size == len(reference.catalog)
