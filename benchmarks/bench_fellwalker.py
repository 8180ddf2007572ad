"""FellWalker speed: L1448 against CUPID's 0.32 s, and a 200 x 400 x 400 synthetic cube.

Run from the repository root::

    python benchmarks/bench_fellwalker.py            # both benchmarks
    python benchmarks/bench_fellwalker.py --skip-big # L1448 only

Prints wall-clock and CPU seconds (best of several runs for L1448), the ratio to
CUPID's time, and for the 32 M voxel cube the time and the process's peak resident
memory (``ru_maxrss``, which includes the cube itself).  Timings on a shared 2-core
machine are noisy: compare CPU and wall time, and rerun when the machine is idle.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CUBE = ROOT / "glue_ssclump" / "data" / "l1448_13co.fits"
CUPID = ROOT / "tests" / "data" / "l1448_cupid_labels.npz"
CUPID_SETTINGS = {"Noise": 0.30, "MinDip": 0.30, "MinHeight": 0.45, "MinPix": 27,
                  "AllowEdge": 1, "FwhmBeam": 2, "VeloRes": 2}


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def synthetic_cube(shape=(200, 400, 400), nblob=8000, rms=1.0, seed=1) -> np.ndarray:
    """Gaussian clumps (peaks 2-15 rms, sigma 1-3 channels, 1.5-6 px) on noise.

    The noise has rms ``rms`` and a channel-to-channel correlation of about 0.4, as
    in real spectra; about 15% of the voxels end up above 2 rms.  float32, K.
    """
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(shape, dtype=np.float32)
    a = 0.219  # kernel [a, 1, a] along v gives a lag-1 correlation of 0.4
    cube = noise.copy()
    cube[1:] += a * noise[:-1]
    cube[:-1] += a * noise[1:]
    del noise
    cube *= rms / np.sqrt(1 + 2 * a * a)
    for _ in range(nblob):
        c = rng.uniform((0, 0, 0), shape)
        s = np.array([rng.uniform(1.0, 3.0), *rng.uniform(1.5, 6.0, 2)])
        amp = rms * rng.uniform(2.0, 15.0)
        lo = np.maximum(np.floor(c - 4 * s).astype(int), 0)
        hi = np.minimum(np.ceil(c + 4 * s).astype(int) + 1, shape)
        z, y, x = (np.arange(lo[i], hi[i], dtype=np.float32) for i in range(3))
        g = (np.exp(-0.5 * ((z - c[0]) / s[0]) ** 2)[:, None, None]
             * np.exp(-0.5 * ((y - c[1]) / s[1]) ** 2)[None, :, None]
             * np.exp(-0.5 * ((x - c[2]) / s[2]) ** 2)[None, None, :])
        cube[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] += amp * g
    return cube


def bench_l1448(repeats: int) -> None:
    from astropy.io import fits

    from glue_ssclump.core.detectors import run_detector

    data = np.asarray(fits.getdata(CUBE), dtype=np.float32)
    meta = json.loads(str(np.load(CUPID)["meta"]))
    cupid_s = meta["runs"]["fellwalker_cfg"]["seconds"]
    run_detector(data, "fellwalker", 0.15, CUPID_SETTINGS)  # warm-up (imports, caches)
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        res = run_detector(data, "fellwalker", 0.15, CUPID_SETTINGS)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    print(f"L1448 {data.shape}: {res.n_candidates} clumps (CUPID "
          f"{meta['runs']['fellwalker_cfg']['nclumps']})")
    print(f"  wall best {min(walls):.3f} s, median {np.median(walls):.3f} s; "
          f"CPU best {min(cpus):.3f} s")
    print(f"  ratio to CUPID's {cupid_s:.2f} s: wall {min(walls) / cupid_s:.2f}, "
          f"CPU {min(cpus) / cupid_s:.2f} (target <= 2)")


def bench_big() -> None:
    from glue_ssclump.core.detectors import run_detector

    t0 = time.perf_counter()
    cube = synthetic_cube()
    print(f"synthetic {cube.shape} ({cube.size / 1e6:.0f} M voxels) made in "
          f"{time.perf_counter() - t0:.1f} s; peak RSS so far {peak_rss_mib():.0f} MiB")
    t0, c0 = time.perf_counter(), time.process_time()
    res = run_detector(cube, "fellwalker", 1.0)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"  {res.n_candidates} clumps; wall {wall:.1f} s, CPU {cpu:.1f} s (target < 60 s)")
    print(f"  peak RSS {peak_rss_mib():.0f} MiB (target < 4096 MiB, cube itself "
          f"{cube.nbytes / 2**20:.0f} MiB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--only-big", action="store_true")
    args = ap.parse_args()
    if not args.only_big:
        bench_l1448(args.repeats)
    if not args.skip_big:
        bench_big()


if __name__ == "__main__":
    main()
