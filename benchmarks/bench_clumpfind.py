"""ClumpFind speed: L1448 against CUPID's own time, and a 32 M voxel synthetic cube.

Run with ``python benchmarks/bench_clumpfind.py`` (``--skip-large`` for L1448 only).
Prints wall and CPU time, the ratio to CUPID's 7.9 s on L1448 (2-core machine, see
``tests/data/l1448_cupid_labels.npz['meta']``), whether the L1448 mask equals
CUPID's, and, for 200 x 400 x 400 cubes of Gaussian blobs (4000, a sparse field, and
20000, a crowded one) in beam-smoothed noise, the time, clump count and peak memory
(numpy allocations traced during the call, and the process's peak resident set size).
On a machine shared with other work, wall times swing; CPU times are steadier.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy import ndimage as ndi

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a plain script from any directory
    sys.path.insert(0, str(ROOT))

from glue_ssclump.core.detectors.registry import run_detector  # noqa: E402

CUBE = ROOT / "glue_ssclump" / "data" / "l1448_13co.fits"
REFERENCE = ROOT / "tests" / "data" / "l1448_cupid_labels.npz"


def synthetic_cube(shape: tuple[int, int, int] = (200, 400, 400), nblobs: int = 4000,
                   seed: int = 1) -> np.ndarray:
    """Gaussian blobs (3-15 rms peaks) in beam-smoothed unit-rms noise, float32 (v, y, x)."""
    rng = np.random.default_rng(seed)
    cube = rng.standard_normal(shape, dtype=np.float32)
    ndi.gaussian_filter(cube, sigma=(0.7, 1.0, 1.0), output=cube)
    cube /= cube.std(dtype=np.float64)
    for _ in range(nblobs):
        centre = rng.uniform(0, shape)
        sig = np.array([rng.uniform(1.0, 3.0), *rng.uniform(1.5, 4.0, 2)])
        amp = rng.uniform(3.0, 15.0)
        lo = np.maximum(np.floor(centre - 3 * sig).astype(int), 0)
        hi = np.minimum(np.ceil(centre + 3 * sig).astype(int) + 1, shape)
        grids = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        arg = sum(((g - c) / s) ** 2 for g, c, s in zip(grids, centre, sig, strict=True))
        cube[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] += (amp * np.exp(-0.5 * arg)).astype(
            np.float32)
    return cube


def bench_l1448() -> None:
    data = np.squeeze(fits.getdata(CUBE)).astype(np.float32)
    ref = np.load(REFERENCE)
    meta = json.loads(str(ref["meta"]))
    cupid_s = meta["runs"]["clumpfind_cfg"]["seconds"]
    walls, cpus = [], []
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        res = run_detector(data, "clumpfind", meta["rms"])
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    same = np.array_equal(res.mask, ref["clumpfind_cfg"])
    print(f"L1448 {data.shape}: {res.n_candidates} clumps (CUPID "
          f"{meta['runs']['clumpfind_cfg']['nclumps']}); mask identical to CUPID's: {same}")
    print(f"  wall {', '.join(f'{t:.2f}' for t in walls)} s (best {min(walls):.2f} s = "
          f"{min(walls) / cupid_s:.2f} x CUPID's {cupid_s:.1f} s); CPU "
          f"{', '.join(f'{t:.2f}' for t in cpus)} s")


def bench_large(nblobs: int) -> None:
    t0 = time.perf_counter()
    cube = synthetic_cube(nblobs=nblobs)
    print(f"synthetic {cube.shape} ({cube.size / 1e6:.0f} M voxels, {nblobs} blobs, "
          f"{(cube >= 3).mean():.1%} above Tlow = 3 rms) built in "
          f"{time.perf_counter() - t0:.1f} s")
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    res = run_detector(cube, "clumpfind", 1.0)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(f"  {res.n_candidates} clumps; wall {elapsed:.1f} s, CPU {cpu:.1f} s; peak numpy "
          f"memory during the call {traced_peak / 2**30:.2f} GiB (plus the "
          f"{cube.nbytes / 2**30:.2f} GiB input); process peak RSS so far {rss:.2f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-large", action="store_true", help="L1448 only")
    parser.add_argument("--nblobs", type=int, nargs="+", default=[4000, 20000],
                        help="blob counts of the 32 M voxel cubes (default: 4000 20000)")
    args = parser.parse_args()
    bench_l1448()
    if not args.skip_large:
        for nblobs in args.nblobs:
            bench_large(nblobs)


if __name__ == "__main__":
    main()
