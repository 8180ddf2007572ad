"""Survey scale on dask.distributed: parallel speed-up, tiling cost, memory, kills.

    python benchmarks/bench_survey.py [--quick] [--workdir DIR] [--out-name NAME]

Measures, with ClumpFind (the paper's settings) on synthetic cubes:

1. ``multi``: 8 cubes of 128 x 256 x 256 (8.4 M voxels each, preset 'clean'), one tile
   each, on a LocalCluster of 1 worker and then of 2 workers (single-threaded worker
   processes): the speed-up (target >= 1.7 on 2 cores).
2. ``big``: one 128 x 512 x 512 cube (33.5 M voxels) untiled, in 4 tiles of 256 x 256
   and in 16 of 128 x 128 (halo 24), one worker each: the time ratio to untiled,
   whether the catalogues and stitched masks are identical, and each worker's peak
   RSS above its idle RSS against the tile window's size.
3. ``overhead``: scheduler overhead per tile at 256 x 256 tiles: the tile phase's wall
   time minus the tiles' own compute time, per tile, over the mean tile time.
4. ``diffuse``: preset 'benchmark' (diffuse emission above Tlow joins clumps into large
   islands), 64 x 256 x 256 untiled vs 4 tiles: how often windows must grow.
5. ``kill``: the 8-cube survey with one worker process killed mid-run (restarted by its
   nanny) and, separately, with the client process killed mid-run and rerun: both
   merged catalogues against the uninterrupted run's.

Results go to ``benchmarks/results/survey[_quick].json`` and ``.log``, with the load
average at start and end (the machine may be shared).  Times are wall seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a plain script from any directory
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"

FULL = {"multi": (8, (128, 256, 256)), "big": (128, 512, 512),
        "big_tiles": [(512, 512), (256, 256), (128, 128)], "diffuse": (64, 256, 256),
        "diffuse_tile": (128, 128), "halo": 24}
QUICK = {"multi": (8, (32, 128, 128)), "big": (64, 256, 256),
         "big_tiles": [(256, 256), (128, 128), (64, 64)], "diffuse": (32, 128, 128),
         "diffuse_tile": (64, 64), "halo": 24}


class Log:
    """Print and keep every line for the .log file."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, *parts: object) -> None:
        line = " ".join(str(p) for p in parts)
        print(line, flush=True)
        self.lines.append(line)


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def make_cube(path: Path, shape: tuple[int, int, int], seed: int, preset: str) -> Path:
    """Write a synthetic cube once (reused by later runs)."""
    from astropy.io import fits

    from glue_ssclump.core.synthetic import make_synthetic_cube

    if not path.is_file():
        data, header, _ = make_synthetic_cube(shape, seed=seed, preset=preset)
        tmp = path.with_suffix(".tmp.fits")
        fits.PrimaryHDU(data, header).writeto(tmp, overwrite=True)
        tmp.replace(path)
    return path


def cluster(n: int):
    from distributed import Client, LocalCluster

    c = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                     dashboard_address=None, memory_limit=0)
    client = Client(c)
    client.run(_warm)  # imports and the detector registry before the clock starts
    return c, client


def _warm() -> float:
    from glue_ssclump.core.detectors import available_detectors
    from glue_ssclump.core.survey import run_survey  # noqa: F401
    from glue_ssclump.core.survey.tile import _peak_rss_mib

    available_detectors()
    return _peak_rss_mib()


def timed_survey(paths, out: Path, client, tile, halo, **kw):
    from glue_ssclump.core.survey import run_survey

    shutil.rmtree(out, ignore_errors=True)
    marks: dict[str, float] = {}

    def on_event(kind, info):
        marks.setdefault(kind, time.perf_counter())
        if kind == "tile":
            marks["last_tile"] = time.perf_counter()
        if kw.get("on_event"):
            kw["on_event"](kind, info)

    t0 = time.perf_counter()
    res = run_survey([os.fspath(p) for p in paths], "clumpfind", out, tile=tile, halo=halo,
                     client=client, on_event=on_event,
                     **{k: v for k, v in kw.items() if k != "on_event"})
    wall = time.perf_counter() - t0
    phase = marks.get("last_tile", marks.get("planned", t0)) - marks.get("planned", t0)
    res.phases = {"start_s": marks.get("dashboard", t0) - t0,
                  "inspect_s": marks.get("planned", t0) - marks.get("dashboard", t0),
                  "tiles_s": phase,
                  "merge_s": marks.get("merged", t0) - marks.get("last_tile",
                                                                 marks.get("planned", t0))}
    return res, wall, phase


def same(a, b) -> tuple[bool, str]:
    """Catalogues equal: integer/string columns exactly, floats to 1e-10 (relative)."""
    if a.colnames != b.colnames or len(a) != len(b):
        return False, f"{len(a)} vs {len(b)} rows"
    worst = 0.0
    for name in a.colnames:
        if name in ("tile", "survey_id"):
            continue
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.dtype.kind == "f":
            if not np.allclose(x, y, rtol=1e-10, atol=1e-10, equal_nan=True):
                return False, f"column {name} differs"
            d = np.abs(x - y) / np.maximum(np.abs(y), 1e-300)
            worst = max(worst, float(np.nanmax(d)) if d.size else 0.0)
        elif not np.array_equal(x, y):
            return False, f"column {name} differs"
    return True, f"max relative float difference {worst:.2g}"


def masks_equal(a, b) -> bool:
    from astropy.io import fits

    (ma,) = (a.out / "cubes").glob("*/mask.fits")
    (mb,) = (b.out / "cubes").glob("*/mask.fits")
    return bool(np.array_equal(fits.getdata(ma), fits.getdata(mb)))


def bench_multi(cfg, work: Path, log: Log) -> tuple[dict, list[Path]]:
    n, shape = cfg["multi"]
    paths = [make_cube(work / f"multi_{shape[0]}x{shape[1]}x{shape[2]}_s{s}.fits", shape, s,
                       "clean") for s in range(n)]
    out: dict = {"cubes": n, "shape": list(shape), "voxels_per_cube": int(np.prod(shape))}
    cats = {}
    for workers in (1, 2):
        c, client = cluster(workers)
        try:
            res, wall, phase = timed_survey(paths, work / f"multi_w{workers}", client,
                                            (shape[1], shape[2]), cfg["halo"])
        finally:
            client.close()
            c.close()
        assert res.ok, res.failures
        cats[workers] = res.catalog
        tile_s = [s["seconds"] for s in res.summaries]
        out[f"workers_{workers}"] = {"wall_s": wall, "tile_phase_s": phase,
                                     "tile_seconds_sum": float(np.sum(tile_s)),
                                     "clumps": len(res.catalog), "phases": res.phases}
        ph = res.phases
        log(f"multi: {n} cubes x {np.prod(shape) / 1e6:.1f} M voxels, {workers} worker(s): "
            f"{wall:.1f} s wall = inspect {ph['inspect_s']:.1f} + tiles {phase:.1f} (their "
            f"compute {np.sum(tile_s):.1f}) + merge {ph['merge_s']:.1f} s; "
            f"{len(res.catalog)} clumps")
        if workers == 1:
            overhead = (phase - float(np.sum(tile_s))) / len(tile_s)
            out["overhead_1worker_per_tile_s"] = overhead
            out["overhead_fraction"] = overhead / float(np.mean(tile_s))
    out["speedup"] = out["workers_1"]["wall_s"] / out["workers_2"]["wall_s"]
    ok, why = same(cats[1], cats[2])
    out["identical_1_vs_2_workers"] = ok
    log(f"multi: speed-up 1 -> 2 workers {out['speedup']:.2f} (target >= 1.7); catalogues "
        f"identical: {ok} ({why})")
    return out, paths


def bench_big(cfg, work: Path, log: Log) -> dict:
    shape = cfg["big"]
    path = make_cube(work / f"big_{shape[0]}x{shape[1]}x{shape[2]}.fits", shape, 11, "clean")
    out: dict = {"shape": list(shape), "voxels": int(np.prod(shape)), "halo": cfg["halo"],
                 "runs": []}
    ref = None
    for tile in cfg["big_tiles"]:
        c, client = cluster(1)
        try:
            idle = max(client.run(_warm).values())
            res, wall, phase = timed_survey([path], work / f"big_{tile[0]}", client, tile,
                                            cfg["halo"])
        finally:
            client.close()
            c.close()
        assert res.ok, res.failures
        tiles = len(res.summaries)
        peak = max(s["peak_rss_mib"] for s in res.summaries)
        first = max(s["first_window_voxels"] for s in res.summaries)
        largest = max(s["window_voxels"] for s in res.summaries)
        tile_s = [s["seconds"] for s in res.summaries]
        run = {"tile": list(tile), "tiles": tiles, "wall_s": wall, "tile_phase_s": phase,
               "tile_seconds": tile_s, "clumps": len(res.catalog),
               "grown_windows": int(sum(s["windows"] > 1 for s in res.summaries)),
               "unresolved": len(res.unresolved),
               "worker_idle_rss_mib": idle, "worker_peak_rss_mib": peak,
               "rss_above_idle_mib": peak - idle,
               "first_window_mib": first * 4 / 2**20, "largest_window_mib": largest * 4 / 2**20}
        run["rss_above_idle_per_window_mib"] = run["rss_above_idle_mib"] / run[
            "largest_window_mib"]
        if ref is None:
            ref = res
            run["time_ratio_to_untiled"] = 1.0
        else:
            ok, why = same(ref.catalog, res.catalog)
            run["identical_catalog"] = ok
            run["identical_mask"] = masks_equal(ref, res)
            run["time_ratio_to_untiled"] = wall / out["runs"][0]["wall_s"]
            run["compare"] = why
        if tile == (256, 256):
            overhead = (phase - float(np.sum(tile_s))) / tiles
            out["overhead_256_per_tile_s"] = overhead
            out["overhead_256_fraction"] = overhead / float(np.mean(tile_s))
        out["runs"].append(run)
        log(f"big {np.prod(shape) / 1e6:.1f} M voxels, tile {tile[0]}x{tile[1]} ({tiles} "
            f"tiles, 1 worker): {wall:.1f} s, x{run['time_ratio_to_untiled']:.2f} of untiled; "
            f"{len(res.catalog)} clumps; identical catalogue/mask: "
            f"{run.get('identical_catalog', '-')}/{run.get('identical_mask', '-')} "
            f"{run.get('compare', '')}; grown windows {run['grown_windows']}; worker RSS "
            f"{peak:.0f} MiB = idle {idle:.0f} + {peak - idle:.0f} MiB for a "
            f"{run['largest_window_mib']:.0f} MiB window "
            f"({run['rss_above_idle_per_window_mib']:.1f} x)")
    if "overhead_256_fraction" in out:
        log(f"overhead: {out['overhead_256_per_tile_s'] * 1e3:.0f} ms per 256x256 tile = "
            f"{100 * out['overhead_256_fraction']:.1f} % of a tile's work (target < 5 %)")
    return out


def bench_diffuse(cfg, work: Path, log: Log) -> dict:
    shape = cfg["diffuse"]
    path = make_cube(work / f"diffuse_{shape[0]}x{shape[1]}x{shape[2]}.fits", shape, 5,
                     "benchmark")
    out: dict = {"shape": list(shape)}
    c, client = cluster(1)
    try:
        un, t_un, _ = timed_survey([path], work / "diffuse_un", client, shape[1:], cfg["halo"])
        ti, t_ti, _ = timed_survey([path], work / "diffuse_ti", client, cfg["diffuse_tile"],
                                   cfg["halo"])
    finally:
        client.close()
        c.close()
    ok, why = same(un.catalog, ti.catalog)
    out.update(untiled_s=t_un, tiled_s=t_ti, ratio=t_ti / t_un, identical=ok,
               windows=[s["windows"] for s in ti.summaries],
               growth=[s["window_voxels"] / s["first_window_voxels"] for s in ti.summaries],
               unresolved=len(ti.unresolved), clumps=len(ti.catalog))
    log(f"diffuse ('benchmark' preset) {shape}: untiled {t_un:.1f} s, 4 tiles {t_ti:.1f} s "
        f"(x{t_ti / t_un:.1f}); windows per tile {out['windows']}, final/first window "
        f"{[round(g, 2) for g in out['growth']]}; identical: {ok} ({why}); "
        f"unresolved {out['unresolved']}")
    return out


def bench_kill(cfg, work: Path, paths: list[Path], log: Log) -> dict:
    from glue_ssclump.core.survey import run_survey

    n, shape = cfg["multi"]
    tile = (shape[1] // 2, shape[2] // 2)  # 4 tiles per cube: more work in flight
    out: dict = {"tile": list(tile)}
    c, client = cluster(2)
    try:
        ref, _, _ = timed_survey(paths, work / "kill_ref", client, tile, cfg["halo"])
        killed: list[str] = []

        def kill_worker(kind, info):
            if kind == "tile" and not killed:
                busy = [w for w, keys in client.processing().items() if keys]
                if busy:
                    client.restart_workers(busy[:1])
                    killed.append(busy[0])

        res, _, _ = timed_survey(paths, work / "kill_worker", client, tile, cfg["halo"],
                                 on_event=kill_worker)
        ok, why = same(ref.catalog, res.catalog)
        out["worker_kill"] = {"killed": bool(killed), "failures": len(res.failures),
                              "identical": ok, "rows": len(res.catalog)}
        log(f"kill a worker mid-run: killed {bool(killed)}, failures {len(res.failures)}, "
            f"merged catalogue identical to the uninterrupted run: {ok} ({why})")

        kdir = work / "kill_client"
        shutil.rmtree(kdir, ignore_errors=True)
        script = (f"from glue_ssclump.core.survey import run_survey\n"
                  f"if __name__ == '__main__':\n"
                  f"    run_survey({[os.fspath(p) for p in paths]!r}, 'clumpfind', "
                  f"{os.fspath(kdir)!r}, tile={tile!r}, halo={cfg['halo']}, workers=2)\n")
        proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not list(kdir.glob("cubes/*/tiles-*/t*.npz")) and proc.poll() is None:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the client and its local cluster
        proc.wait()
        before = len(list(kdir.glob("cubes/*/tiles-*/t*.npz")))
        res = run_survey([os.fspath(p) for p in paths], "clumpfind", kdir, tile=tile,
                         halo=cfg["halo"], client=client)
        ok, why = same(ref.catalog, res.catalog)
        out["client_kill"] = {"tiles_done_before_kill": before,
                              "skipped_on_rerun": res.tiles_skipped,
                              "run_on_rerun": res.tiles_run, "identical": ok}
        log(f"kill the client mid-run ({before} of {res.tiles_total} tiles written): rerun "
            f"skipped {res.tiles_skipped}, ran {res.tiles_run}; merged catalogue identical: "
            f"{ok} ({why})")
    finally:
        client.close()
        c.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small cubes (a minute or two)")
    ap.add_argument("--workdir", default="/tmp/ssclump_bench_survey",
                    help="cubes and survey outputs (cubes are reused)")
    ap.add_argument("--only", nargs="*", default=None,
                    help="multi, big, diffuse, kill (default all)")
    ap.add_argument("--out-name", default=None, help="results file stem")
    args = ap.parse_args()
    cfg = QUICK if args.quick else FULL
    work = Path(args.workdir) / ("quick" if args.quick else "full")
    work.mkdir(parents=True, exist_ok=True)
    log = Log()
    want = set(args.only or ["multi", "big", "diffuse", "kill"])
    log(f"bench_survey {'--quick' if args.quick else ''}: {time.strftime('%Y-%m-%d %H:%M:%S')}"
        f" UTC, {os.cpu_count()} cores, load {load()}")
    report: dict = {"quick": args.quick, "load_start": load(), "cores": os.cpu_count()}
    paths: list[Path] = []
    if "multi" in want or "kill" in want:
        report["multi"], paths = bench_multi(cfg, work, log)
    if "big" in want:
        report["big"] = bench_big(cfg, work, log)
    if "diffuse" in want:
        report["diffuse"] = bench_diffuse(cfg, work, log)
    if "kill" in want:
        report["kill"] = bench_kill(cfg, work, paths, log)
    report["load_end"] = load()
    log(f"load at end {report['load_end']}")
    stem = args.out_name or ("survey_quick" if args.quick else "survey")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=1, default=float))
    (RESULTS / f"{stem}.log").write_text("\n".join(log.lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
