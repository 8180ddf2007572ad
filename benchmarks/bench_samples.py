"""Candidate-sample generation: throughput and peak memory.

Run with ``python benchmarks/bench_samples.py`` (``--quick`` skips the 25,000-candidate
and the network runs; ``--json FILE`` also writes the figures).

1. L1448 ClumpFind candidates (CUPID's mask with the paper's settings, 1,472
   candidates, ``tests/data/l1448_cupid_labels.npz``): samples per second of
   ``CandidateSamples.get`` in batches of 256, without cache.
2. 25,000 L1448-like candidates: the L1448 cube and its ClumpFind mask tiled 4 x 5 on
   the sky (29,440 candidates, the first 25,000 used): samples per second of
   ``batches(1000)`` and the peak memory of iterating all of them (numpy allocations
   traced during the loop, and the process's peak resident set size). The float32
   samples together would be 2.7 GB.
3. Overlap: SS-3D-Clump inference (``model.infer`` on the CPU) over the L1448
   candidates with the background batch thread on (``prefetch=1``, the default) and
   off, against the network alone on pre-built samples.

``--false-fractions`` instead measures the false-candidate fractions of the synthetic
presets (``glue_ssclump.core.synthetic.PRESET_FALSE_FRACTIONS``): every detector at its
default (paper) settings on the preset's default cube, seeds 0-2, at the injected rms
and at ``estimate_rms`` (a few minutes; the dendrogram is the slow one).
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

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a plain script from any directory
    sys.path.insert(0, str(ROOT))

from glue_ssclump.core.samples import ArraySamples, CandidateSamples  # noqa: E402

CUBE = ROOT / "glue_ssclump" / "data" / "l1448_13co.fits"
CUPID_MASKS = ROOT / "tests" / "data" / "l1448_cupid_labels.npz"
RMS = 0.15


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_l1448() -> tuple[np.ndarray, np.ndarray]:
    data = np.squeeze(fits.getdata(CUBE)).astype(np.float32)
    mask = np.load(CUPID_MASKS)["clumpfind_cfg"].astype(np.int32)
    return data, mask


def tiled(data: np.ndarray, mask: np.ndarray, ny: int, nx: int) -> tuple[np.ndarray, ...]:
    """The cube and mask repeated ny x nx on the sky, ids offset per tile."""
    n = int(mask.max())
    big = np.tile(data, (1, ny, nx))
    lab = np.tile(mask, (1, ny, nx))
    h, w = mask.shape[1:]
    for j in range(ny):
        for i in range(nx):
            tile = lab[:, j * h:(j + 1) * h, i * w:(i + 1) * w]
            tile[tile > 0] += n * (j * nx + i)
    return big, lab


def bench_l1448(data: np.ndarray, mask: np.ndarray, repeats: int = 3) -> dict:
    src = CandidateSamples(data, mask, rms=RMS, cache=None)
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        n = sum(len(i) for i, _ in src.batches(256, prefetch=0))
        rates.append(n / (time.perf_counter() - t))
    big = int((src.shapes.max(axis=1) > 30).sum())
    return {"candidates": len(src), "larger_than_30": big, "lag1": round(src.lag1, 3),
            "samples_per_s": round(max(rates)), "samples_per_s_all": [round(r) for r in rates]}


def bench_25k(data: np.ndarray, mask: np.ndarray, n: int = 25_000) -> dict:
    big, lab = tiled(data, mask, 4, 5)
    t = time.perf_counter()
    src = CandidateSamples(big, lab, clump_ids=np.arange(1, n + 1), rms=RMS, cache="auto")
    setup_s = time.perf_counter() - t
    # pass 1: speed (tracemalloc slows numpy's allocations down, so not traced here)
    rss_before = _rss_mb()
    t = time.perf_counter()
    count = 0
    for idx, _batch in src.batches(1000):
        count += len(idx)
    dt = time.perf_counter() - t
    rss_after = _rss_mb()
    # pass 2: peak of the numpy allocations made while iterating
    tracemalloc.start()
    for _idx, _batch in src.batches(1000):
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"candidates": count, "cube_shape": list(big.shape), "cache": src.cache,
            "setup_s": round(setup_s, 2), "seconds": round(dt, 2),
            "samples_per_s": round(count / dt),
            "traced_peak_mb": round(peak / 2**20, 1),
            "rss_before_mb": round(rss_before), "rss_peak_mb": round(rss_after),
            "all_samples_float32_mb": round(count * 30**3 * 4 / 2**20)}


def bench_overlap(data: np.ndarray, mask: np.ndarray, batch: int = 256,
                  repeats: int = 2) -> dict:
    import torch

    from glue_ssclump.core.model import SSClumpNet, infer

    torch.manual_seed(0)
    model = SSClumpNet().eval()
    src = CandidateSamples(data, mask, rms=RMS, cache=None)
    arrays = ArraySamples(src.get(np.arange(len(src))))
    infer(model, arrays.get(np.arange(batch)), batch_size=batch, device="cpu")  # warm-up
    out = {"candidates": len(src), "torch_threads": torch.get_num_threads()}

    class NoPrefetch(CandidateSamples):
        default_prefetch = 0

    plain = NoPrefetch(data, mask, rms=RMS, cache=None)
    # best of `repeats`, interleaved, so that load from other processes hits all alike
    times: dict[str, list[float]] = {"network_only": [], "prefetch_0": [], "prefetch_1": []}
    for _ in range(repeats):
        for name, source in (("network_only", arrays), ("prefetch_0", plain),
                             ("prefetch_1", src)):
            t = time.perf_counter()
            infer(model, source, batch_size=batch, device="cpu")
            times[name].append(time.perf_counter() - t)
    for name, values in times.items():
        out[name + "_s"] = round(min(values), 2)
    gen = out["prefetch_0_s"] - out["network_only_s"]
    out["generation_s"] = round(gen, 2)
    out["hidden_by_prefetch_s"] = round(out["prefetch_0_s"] - out["prefetch_1_s"], 2)
    return out


def false_fractions(presets: tuple[str, ...] = ("benchmark", "clean"),
                    seeds: tuple[int, ...] = (0, 1, 2)) -> dict:
    from glue_ssclump.core.cube import estimate_rms
    from glue_ssclump.core.detectors import available_detectors, run_detector
    from glue_ssclump.core.synthetic import (
        candidate_peaks,
        make_synthetic_cube,
        match_candidates,
    )

    out: dict = {}
    for preset in presets:
        for det in ("clumpfind", "fellwalker", "dendrogram"):
            if det not in available_detectors():
                continue
            runs: dict = {"true_rms": [], "estimated_rms": []}
            for seed in seeds:
                data, header, truth = make_synthetic_cube(seed=seed, preset=preset)
                for key, rms in (("true_rms", header["SYNRMS"]),
                                 ("estimated_rms", estimate_rms(data))):
                    mask = run_detector(data, det, rms).mask
                    match = match_candidates(candidate_peaks(data, mask), truth)
                    bright = int((truth["snr_peak"] >= 5).sum())
                    runs[key].append({
                        "seed": seed, "rms": round(float(rms), 4), "candidates": len(match),
                        "false_fraction": round(float((match < 0).mean()), 3),
                        "recall": round(len(set(match[match >= 0].tolist())) / bright, 3)})
                    print(preset, det, key, json.dumps(runs[key][-1]), flush=True)
            out.setdefault(preset, {})[det] = {
                key: {"mean": round(float(np.mean([r["false_fraction"] for r in v])), 3),
                      "min": min(r["false_fraction"] for r in v),
                      "max": max(r["false_fraction"] for r in v), "runs": v}
                for key, v in runs.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="L1448 throughput only")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--false-fractions", action="store_true",
                        help="measure the synthetic presets' false-candidate fractions instead")
    args = parser.parse_args(argv)
    if args.false_fractions:
        results = {"false_fractions": false_fractions()}
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return 0
    data, mask = load_l1448()
    results = {"l1448": bench_l1448(data, mask)}
    print("L1448 ClumpFind candidates:", json.dumps(results["l1448"]), flush=True)
    if not args.quick:
        results["candidates_25k"] = bench_25k(data, mask)
        print("25,000 candidates:", json.dumps(results["candidates_25k"]), flush=True)
        results["overlap_inference"] = bench_overlap(data, mask)
        print("inference overlap:", json.dumps(results["overlap_inference"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
