"""glue linked-brushing speed on a large cube: 200 x 400 x 400 voxels, 25,000 candidates.

Run with ``python benchmarks/bench_glue.py`` (``--repeat N`` to change the number of
timed repetitions). No detector runs: the mask is a grid of 10 x 50 x 50 boxes
(one candidate of 12 x 5 x 5 voxels in each 20 x 8 x 8 block), the catalogue has one
row per box. The pair is joined and linked exactly as the data factory does
(``make_cube_data`` / ``make_catalog_data`` / ``link_candidates``), in a glue-core
``DataCollection`` (no Qt, no viewers).

Timed (medians printed, with the targets):

1. selection: select 1,000 random catalogue rows (``select_candidates``: an
   ``ElementSubsetState`` on the catalogue, like the table viewer's) and compute the
   cube's visible-slice mask ``subset.to_mask(view=(k, :, :))`` through glue's
   ``clump_id`` join -- target median < 200 ms; the whole-cube mask is timed too;
2. write-back: ``write_verdicts`` with p_clump, verdict and label for all 25,000
   rows, which updates the components and the five verdict/label subset groups --
   target median < 1 s; then the five groups' visible-slice masks on the cube (what
   an image viewer recomputes) are timed as well.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a plain script from any directory
    sys.path.insert(0, str(ROOT))

from glue.core import DataCollection  # noqa: E402

from glue_ssclump.core.cube import cube_from_array  # noqa: E402
from glue_ssclump.integration import (  # noqa: E402
    link_candidates,
    make_catalog_data,
    make_cube_data,
    select_candidates,
    write_verdicts,
)

SHAPE = (200, 400, 400)
BLOCK = (20, 8, 8)
TARGET_SELECT_S = 0.200
TARGET_WRITE_S = 1.0


def synthetic_mask(shape: tuple[int, int, int] = SHAPE,
                   block: tuple[int, int, int] = BLOCK) -> np.ndarray:
    """int32 mask: one box-shaped candidate per block, ids 1..N in C order."""
    grid = tuple(s // b for s, b in zip(shape, block, strict=True))
    ids = np.arange(1, int(np.prod(grid)) + 1, dtype=np.int32).reshape(grid)
    box = np.zeros(block, dtype=np.int32)
    box[3:15, 1:6, 2:7] = 1
    return np.kron(ids, np.ones(block, dtype=np.int32)) * np.tile(box, grid)


def synthetic_header(shape: tuple[int, int, int]) -> fits.Header:
    nv, ny, nx = shape
    header = fits.Header()
    for key, value in (("NAXIS", 3), ("NAXIS1", nx), ("NAXIS2", ny), ("NAXIS3", nv),
                       ("CTYPE1", "GLON-CAR"), ("CTYPE2", "GLAT-CAR"), ("CTYPE3", "VRAD"),
                       ("CRPIX1", nx / 2), ("CRPIX2", ny / 2), ("CRPIX3", 1.0),
                       ("CRVAL1", 30.0), ("CRVAL2", 0.0), ("CRVAL3", -20.0),
                       ("CDELT1", -0.0083333), ("CDELT2", 0.0083333), ("CDELT3", 0.2),
                       ("CUNIT1", "deg"), ("CUNIT2", "deg"), ("CUNIT3", "km/s"),
                       ("BUNIT", "K"), ("SPECSYS", "LSRK")):
        header[key] = value
    return header


def build(seed: int = 0):
    """(data collection, cube Data, catalogue Data, cube_mask) for the benchmark."""
    cube_mask = synthetic_mask()
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(SHAPE, dtype=np.float32)
    cube = cube_from_array(values, synthetic_header(SHAPE))
    n = int(cube_mask.max())
    ids = np.arange(1, n + 1)
    # "peak" = first voxel of each box; id i sits in block unravel_index(i - 1, grid)
    grid = tuple(s // b for s, b in zip(SHAPE, BLOCK, strict=True))
    bz, by, bx = np.unravel_index(ids - 1, grid)
    z, y, x = bz * BLOCK[0] + 3, by * BLOCK[1] + 1, bx * BLOCK[2] + 2
    if not np.array_equal(cube_mask[z, y, x], ids):
        raise AssertionError("box layout and catalogue rows disagree")
    lon, lat, vel = cube.pixel_to_world(x, y, z)
    table = Table({"clump_id": ids, "peak_x": x, "peak_y": y, "peak_z": z,
                   "peak_lon": lon, "peak_lat": lat, "peak_vel": vel,
                   "npix": np.full(n, 12 * 5 * 5)})
    table["peak_lon"].unit = table["peak_lat"].unit = "deg"
    table["peak_vel"].unit = "km / s"
    cube_data = make_cube_data(cube, cube_mask, "bench cube")
    catalog_data = make_catalog_data(table, "bench candidates")
    dc = DataCollection([cube_data, catalog_data])
    link_candidates(dc, cube_data, catalog_data)
    return dc, cube_data, catalog_data, cube_mask


def _cube_subset(group, cube_data):
    return next(s for s in group.subsets if s.data is cube_data)


def bench_selection(dc, cube_data, catalog_data, cube_mask, repeat: int, rng) -> dict[str, float]:
    n = catalog_data.size
    times, full_times = [], []
    for i in range(repeat):
        rows = rng.choice(n, 1000, replace=False)
        ids = np.asarray(catalog_data["clump_id"])[rows]
        k = int(rng.integers(0, SHAPE[0]))
        t0 = time.perf_counter()
        group = select_candidates(dc, catalog_data, ids, label="bench selection")
        mask = _cube_subset(group, cube_data).to_mask(view=(k, slice(None), slice(None)))
        times.append(time.perf_counter() - t0)
        if not np.array_equal(mask, np.isin(cube_mask[k], ids)):
            raise AssertionError("slice mask differs from isin(cube_mask, ids)")
        if i < 3:
            t0 = time.perf_counter()
            _cube_subset(group, cube_data).to_mask()
            full_times.append(time.perf_counter() - t0)
    return {"select_slice": float(np.median(times)), "full_cube": float(np.median(full_times))}


def bench_writeback(dc, cube_data, catalog_data, cube_mask, repeat: int, rng) -> dict[str, float]:
    n = catalog_data.size
    write_times, mask_times = [], []
    for _ in range(repeat):
        p = rng.random(n)
        verdict = np.where(p > 0.6, "clump", np.where(p < 0.3, "rejected", "uncertain"))
        label = rng.choice([-1, 0, 1, 2], n)
        t0 = time.perf_counter()
        groups = write_verdicts(dc, catalog_data, p_clump=p, verdict=verdict, label=label)
        write_times.append(time.perf_counter() - t0)
        k = int(rng.integers(0, SHAPE[0]))
        t0 = time.perf_counter()
        masks = {name: _cube_subset(g, cube_data).to_mask(view=(k, slice(None), slice(None)))
                 for name, g in groups.items()}
        mask_times.append(time.perf_counter() - t0)
        expected = np.isin(cube_mask[k], np.asarray(catalog_data["clump_id"])[verdict == "clump"])
        if not np.array_equal(masks["SS-3D-Clump: clumps"], expected):
            raise AssertionError("verdict subset slice mask is wrong")
    if len(catalog_data.components) != len(set(c.label for c in catalog_data.components)):
        raise AssertionError("duplicated components")
    return {"write": float(np.median(write_times)),
            "group_slice_masks": float(np.median(mask_times))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="timed repetitions")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(42)

    t0 = time.perf_counter()
    dc, cube_data, catalog_data, cube_mask = build()
    n = catalog_data.size
    print(f"cube {SHAPE[0]} x {SHAPE[1]} x {SHAPE[2]} ({cube_mask.size / 1e6:.0f} M voxels), "
          f"{n} candidates; setup {time.perf_counter() - t0:.1f} s")

    sel = bench_selection(dc, cube_data, catalog_data, cube_mask, args.repeat, rng)
    ok_sel = sel["select_slice"] < TARGET_SELECT_S
    print(f"select 1000 rows + cube slice mask: median {sel['select_slice'] * 1e3:.1f} ms "
          f"(target < {TARGET_SELECT_S * 1e3:.0f} ms) {'OK' if ok_sel else 'SLOW'}")
    print(f"  (whole-cube mask of that selection: median {sel['full_cube'] * 1e3:.0f} ms)")

    wb = bench_writeback(dc, cube_data, catalog_data, cube_mask, max(3, args.repeat // 2), rng)
    ok_wb = wb["write"] < TARGET_WRITE_S
    print(f"write_verdicts for {n} rows + 5 subset groups: median {wb['write'] * 1e3:.1f} ms "
          f"(target < {TARGET_WRITE_S * 1e3:.0f} ms) {'OK' if ok_wb else 'SLOW'}")
    print(f"  (then the 5 groups' cube slice masks: median "
          f"{wb['group_slice_masks'] * 1e3:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
