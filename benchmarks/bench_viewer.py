"""Speed of the verification viewer: next candidate on a 200 x 400 x 400 cube, 25,000 candidates.

Run (offscreen, from the repository root)::

    QT_QPA_PLATFORM=offscreen GLUE_TESTING=True MPLBACKEND=Agg \\
        python benchmarks/bench_viewer.py [--steps 200] [--profile]

The cube is noise plus one ellipsoidal Gaussian candidate in every 8 x 16 x 10 voxel
block (25 x 25 x 40 blocks = 25,000 candidates of random size and brightness); the
catalogue comes from :func:`glue_ssclump.core.catalog.build_catalog`, and the pair
is joined and linked as the data factory does. A ``GlueApplication`` holds the data
and the viewer (so the "Current candidate" subset group is updated through the real
hub on every step).

Timed per step (median, 90th percentile, max printed; the target is a median under
100 ms for the whole switch):

* ``update``: ``viewer.next_candidate()`` -- state change, cut-out maps and spectra
  (cropped region only), artists updated in place, info panel, subset group;
* ``draw``: ``canvas.draw()`` -- matplotlib renders the five panels (three WCSAxes);
* ``switch`` = update + draw: what the user waits for.

Both the catalogue order (neighbouring candidates) and a random order (jumps across
the cube) are timed. The one-off indexing (``find_objects`` over the mask, in a
worker thread) is reported separately.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a plain script from any directory
    sys.path.insert(0, str(ROOT))

SHAPE = (200, 400, 400)
BLOCK = (8, 16, 10)
TARGET_MS = 100.0


def synthetic_cube(shape=SHAPE, block=BLOCK, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float32 cube (K) and int32 label mask with one ellipsoid candidate per block."""
    rng = np.random.default_rng(seed)
    grid = tuple(s // b for s, b in zip(shape, block, strict=True))
    n = int(np.prod(grid))
    cube = rng.normal(0.0, 0.1, size=shape).astype(np.float32)
    labels = np.zeros(shape, dtype=np.int32)
    # Per-block parameters: radii (voxels) and peak temperature.
    radii = np.stack([rng.uniform(1.5, b / 2 - 0.5, n) for b in block], axis=1)
    amp = rng.uniform(0.5, 5.0, n).astype(np.float32)
    local = [np.arange(b, dtype=np.float32) - (b - 1) / 2 for b in block]
    dz, dy, dx = np.meshgrid(*local, indexing="ij")
    ids = np.arange(1, n + 1, dtype=np.int32).reshape(grid)
    for iz in range(grid[0]):  # 25 slabs; each one vectorised over its 1,000 blocks
        sl = slice(iz * block[0], (iz + 1) * block[0])
        k = ids[iz] - 1  # (gy, gx) candidate indices of this slab
        r = radii[k]  # (gy, gx, 3)
        q = ((dz[None, None] / r[..., 0, None, None, None]) ** 2
             + (dy[None, None] / r[..., 1, None, None, None]) ** 2
             + (dx[None, None] / r[..., 2, None, None, None]) ** 2)  # (gy, gx, bz, by, bx)
        signal = amp[k][..., None, None, None] * np.exp(-1.5 * q)
        inside = q <= 1.0
        lab = np.where(inside, ids[iz][..., None, None, None], 0)
        # (gy, gx, bz, by, bx) -> (bz, gy*by, gx*bx)
        cube[sl] += signal.transpose(2, 0, 3, 1, 4).reshape(block[0], shape[1], shape[2])
        labels[sl] = lab.transpose(2, 0, 3, 1, 4).reshape(block[0], shape[1], shape[2])
    return cube, labels


def header(shape=SHAPE) -> fits.Header:
    h = fits.Header()
    h["NAXIS"] = 3
    h["NAXIS1"], h["NAXIS2"], h["NAXIS3"] = shape[2], shape[1], shape[0]
    h["CTYPE1"], h["CRVAL1"], h["CDELT1"], h["CRPIX1"], h["CUNIT1"] = \
        "GLON-CAR", 30.0, -0.0083333, shape[2] / 2, "deg"
    h["CTYPE2"], h["CRVAL2"], h["CDELT2"], h["CRPIX2"], h["CUNIT2"] = \
        "GLAT-CAR", 0.0, 0.0083333, shape[1] / 2, "deg"
    h["CTYPE3"], h["CRVAL3"], h["CDELT3"], h["CRPIX3"], h["CUNIT3"] = \
        "VRAD", 0.0, 166.0, shape[0] / 2, "m/s"
    h["BUNIT"] = "K"
    return h


def _stats(ms: np.ndarray) -> str:
    return (f"median {np.median(ms):6.1f} ms   p90 {np.percentile(ms, 90):6.1f} ms   "
            f"max {ms.max():6.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per order")
    parser.add_argument("--profile", action="store_true",
                        help="print the top functions of a cProfile of the steps")
    args = parser.parse_args(argv)

    from glue.core import DataCollection
    from glue_qt.app import GlueApplication
    from glue_qt.utils import get_qapp, process_events

    from glue_ssclump.core.catalog import build_catalog
    from glue_ssclump.core.cube import cube_from_array
    from glue_ssclump.integration import link_candidates, make_catalog_data, make_cube_data
    from glue_ssclump.qt.viewer import VerificationViewer

    get_qapp()
    t = time.perf_counter()
    values, labels = synthetic_cube()
    ppv = cube_from_array(values, header())
    table = build_catalog(ppv, labels, "synthetic", 0.1)
    print(f"cube {SHAPE}, {len(table)} candidates; built in {time.perf_counter() - t:.1f} s")

    cube_data = make_cube_data(ppv, labels, "bench cube")
    cat_data = make_catalog_data(table, "bench candidates")
    dc = DataCollection([cube_data, cat_data])
    link_candidates(dc, cube_data, cat_data)
    app = GlueApplication(dc)
    viewer = app.new_data_viewer(VerificationViewer, data=cat_data)
    viewer.viewer_size = (1280, 720)
    t = time.perf_counter()
    while not viewer.is_ready:
        process_events(0.01)
        if time.perf_counter() - t > 600:
            raise RuntimeError("indexing did not finish")
    print(f"index (find_objects, worker thread): {time.perf_counter() - t:.2f} s; "
          f"GUI stayed responsive meanwhile")
    process_events(0.1)
    viewer.canvas.draw()

    profiler = cProfile.Profile() if args.profile else None
    results = {}
    for order in ("catalogue", "random"):
        viewer.state.order = order
        viewer.state.current_id = int(viewer.navigation_ids()[0])
        viewer.canvas.draw()
        update, draw = [], []
        for _ in range(args.steps):
            if profiler:
                profiler.enable()
            t0 = time.perf_counter()
            viewer.next_candidate()
            t1 = time.perf_counter()
            viewer.canvas.draw()
            t2 = time.perf_counter()
            if profiler:
                profiler.disable()
            process_events()  # let Qt run as it would between key presses
            update.append(t1 - t0)
            draw.append(t2 - t1)
        update_ms, draw_ms = 1000 * np.array(update), 1000 * np.array(draw)
        results[order] = update_ms + draw_ms
        print(f"\n{order} order, {args.steps} steps")
        print(f"  update  {_stats(update_ms)}")
        print(f"  draw    {_stats(draw_ms)}")
        print(f"  switch  {_stats(update_ms + draw_ms)}")
    worst = max(float(np.median(v)) for v in results.values())
    verdict = "PASS" if worst < TARGET_MS else "FAIL"
    print(f"\nswitch median (worst order) {worst:.1f} ms, target < {TARGET_MS:.0f} ms: {verdict}")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    viewer.close(warn=False)
    app.close()
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
