"""Galaxy clump photometry (issue #13): measured / true r-band flux ratio of synthetic clumps.

    python benchmarks/bench_galaxy_flux.py [--n 150] [--seed 1000]

For ``--n`` synthetic galaxies of seed ``--seed`` (held out from the shipped model's
training), the clump-to-host flux ratio that ``detect_clumps`` reports (1.125 FWHM
aperture, 3-5 FWHM annulus, the paper's aperture correction 1.03, the host segment's
sum) over the injected one: at the truth positions, and at the shipped model's matched
detections (within 0.75 FWHM), per truth flux-ratio bin.  Writes
``benchmarks/results/galaxy_flux.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
BINS = ((">= 8 %", 0.08, np.inf), ("3-8 %", 0.03, 0.08), ("< 3 %", 0.0, 0.03))


def _bin(ratio: float) -> str:
    return next(name for name, lo, hi in BINS if lo <= ratio < hi)


def measure(n: int, seed: int) -> dict[str, dict[str, list[float]]]:
    """Measured / true flux ratios, ``{where: {bin: [...]}}``."""
    from glue_ssclump.core.galaxy import (
        detect_clumps,
        flux_ratios,
        host_mask,
        load_default_model,
        synth_galaxy,
    )
    from glue_ssclump.core.galaxy.evaluate import match

    model = load_default_model(device="cpu")
    out: dict[str, dict[str, list[float]]] = {"truth positions": {}, "matched detections": {}}
    for k in range(seed, seed + n):
        image, truth = synth_galaxy(k)
        clumps = truth[truth["class"] == "clump"]
        if not len(clumps):
            continue
        fwhm = image.psf_fwhm_pix
        measured = flux_ratios(image.planes[1], clumps["x"], clumps["y"], fwhm, host_mask(image))
        for m, t in zip(measured, clumps["flux_ratio"], strict=True):
            out["truth positions"].setdefault(_bin(t), []).append(float(m / t))
        det = detect_clumps(image, model, device="cpu")
        det = det[det["class"] == "clump"]
        if not len(det):
            continue
        idx = match(det["x"], det["y"], det["score"], clumps["x"], clumps["y"], 0.75 * fwhm)
        for row, i in enumerate(idx):
            if i >= 0:
                t = float(clumps["flux_ratio"][i])
                out["matched detections"].setdefault(_bin(t), []).append(
                    float(det["flux_ratio"][row] / t))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=150, help="galaxies")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=RESULTS / "galaxy_flux.json")
    args = parser.parse_args()
    ratios = measure(args.n, args.seed)
    summary = {}
    print(f"{args.n} galaxies of seed {args.seed}: measured / true r-band flux ratio")
    for where, bins in ratios.items():
        for name, _, _ in BINS:
            v = np.asarray(bins.get(name, []))
            if not v.size:
                continue
            q25, q50, q75 = np.percentile(v, [25, 50, 75])
            summary[f"{where}, {name}"] = {"n": int(v.size), "median": q50, "q25": q25,
                                           "q75": q75}
            print(f"  {where:20s} {name:7s} n={v.size:4d}  median {q50:.3f}  "
                  f"IQR {q25:.3f}-{q75:.3f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"n": args.n, "seed": args.seed, "ratios": summary},
                                    indent=1))
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
