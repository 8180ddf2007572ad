"""How the default verifier's two numbers were chosen: a grid on the TUNING cubes only.

The ensemble verifier (``glue_ssclump/core/ensemble.py``) scores a candidate by
``logit p = logit p_context + w * logit p_paper + b``.  This script scores every
(w, b) of a grid on the tuning cubes of both kinds of truth, never on the cubes the
tables in docs/verifier.md report:

* morphology truth, ``morph_hard`` cube seeds 50-51, FellWalker and ClumpFind, seeds
  drawn 3 times per cube (``pick_seeds(seed=r)``), scored on the other candidates;
* SNR truth, ``benchmark`` preset and ``--diffuse-peak 10``, runs 10-11 (cube seeds
  110-111; the tables use runs 0-2).

Each (w, b) gets the margin by which it clears the issue's targets, in mean F1 at
p >= 0.5: FellWalker - 0.90, ClumpFind - 0.85, and on each SNR preset F1 - (ceiling -
0.01), the ceiling being per run the best truth-tuned F1 of the context model, the paper
model, the peak SNR and the blend itself.  The choice is the best margin after a 3 x 3
moving average over the grid (a flat optimum, not a lucky cell).

Usage::

    python benchmarks/bench_ensemble_grid.py --json benchmarks/results/ensemble_grid.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter

from glue_ssclump.core.checkpoint import load_checkpoint
from glue_ssclump.core.metrics import f1
from glue_ssclump.core.model import infer
from glue_ssclump.core.pretrain import morph_candidate_set, pick_seeds, synthetic_candidate_set
from glue_ssclump.core.synthetic import PRESETS
from glue_ssclump.core.training import DEFAULT_CHECKPOINT, DEFAULT_CONTEXT_CHECKPOINT

#: (name, target F1 or None for 'ceiling - 0.01').
GROUPS = (("morph_hard FellWalker", 0.90), ("morph_hard ClumpFind", 0.85),
          ("benchmark", None), ("diffuse-peak 10", None))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(q / (1 - q))


def best_t_f1(y: np.ndarray, score: np.ndarray) -> float:
    """F1 at the best threshold chosen with the truth (as bench_accuracy's 'best-t')."""
    cuts = np.unique(np.quantile(score, np.linspace(0.0, 1.0, 201)))
    return float(max(f1(y, (score >= t).astype(np.int64)) for t in cuts))


def candidate_runs(context_path: Path, paper_path: Path, log) -> dict[str, list[dict]]:
    """Per group, per run: truth, logits of both networks and peak SNR on the non-seeds."""
    ctx, pap = load_checkpoint(context_path)[0], load_checkpoint(paper_path)[0]
    sets = []
    for method, group in (("fellwalker", GROUPS[0][0]), ("clumpfind", GROUPS[1][0])):
        for cube in (50, 51):
            sets.append((group, lambda c=cube, m=method: morph_candidate_set(
                c, "morph_hard", m), (0, 1, 2)))
    for group, peak in ((GROUPS[2][0], None), (GROUPS[3][0], 10.0)):
        preset = PRESETS["benchmark"] if peak is None else replace(PRESETS["benchmark"],
                                                                  diffuse_peak=peak)
        for r in (10, 11):
            sets.append((group, lambda r=r, p=preset: synthetic_candidate_set(
                100 + r, (64, 256, 256), preset=p), (r,)))
    out: dict[str, list[dict]] = {g: [] for g, _ in GROUPS}
    for group, make, runs in sets:
        t0 = time.perf_counter()
        cs = make()
        y = cs.is_true.astype(np.int64)
        ctx_src = cs.samples(arch="context")
        xc = _logit(infer(ctx, ctx_src)[0])
        xp = _logit(infer(pap, cs.samples(arch="paper"))[0])
        snr = np.asarray(cs.catalog["snr_peak"], dtype=float)
        for r in runs:
            test = pick_seeds(y, fraction=0.01, min_per_class=10, seed=r) < 0
            out[group].append({"y": y[test], "xc": xc[test], "xp": xp[test],
                               "snr": snr[test]})
        log(f"{group}: {y.size} candidates, {len(runs)} run(s), "
            f"{time.perf_counter() - t0:.0f} s")
    return out


def grid(data: dict[str, list[dict]], weights: np.ndarray, biases: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray]:
    """Mean F1 and target (per group) for every (w, b): arrays (w, b, group)."""
    f = np.zeros((weights.size, biases.size, len(GROUPS)))
    target = np.zeros_like(f)
    for k, (group, goal) in enumerate(GROUPS):
        runs = data[group]
        fixed = [max(best_t_f1(d["y"], d["xc"]), best_t_f1(d["y"], d["xp"]),
                     best_t_f1(d["y"], d["snr"])) for d in runs]
        for i, w in enumerate(weights):
            for j, b in enumerate(biases):
                z = [d["xc"] + w * d["xp"] + b for d in runs]
                f[i, j, k] = np.mean([f1(d["y"], (zz >= 0).astype(np.int64))
                                      for d, zz in zip(runs, z, strict=True)])
                if goal is None:
                    ceil = [max(c, best_t_f1(d["y"], zz))
                            for c, d, zz in zip(fixed, runs, z, strict=True)]
                    target[i, j, k] = np.mean(ceil) - 0.01
                else:
                    target[i, j, k] = goal
    return f, target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--context-model", type=Path, default=DEFAULT_CONTEXT_CHECKPOINT)
    ap.add_argument("--paper-model", type=Path, default=DEFAULT_CHECKPOINT)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    data = candidate_runs(args.context_model, args.paper_model, print)
    weights = np.round(np.arange(0.10, 0.601, 0.05), 3)
    biases = np.round(np.arange(-2.5, -0.499, 0.125), 3)
    f, target = grid(data, weights, biases)
    margin = (f - target).min(axis=-1)
    smooth = uniform_filter(margin, size=3, mode="nearest")
    i, j = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    print("margin (rows: w " + " ".join(f"{w:g}" for w in weights) + "; columns: b "
          + " ".join(f"{b:g}" for b in biases) + ")")
    for w, row in zip(weights, margin, strict=True):
        print(f"  w {w:4.2f} " + " ".join(f"{m:+.3f}" for m in row))
    print(f"choice: w = {weights[i]:g}, b = {biases[j]:g}; margin {margin[i, j]:+.4f} "
          f"(smoothed {smooth[i, j]:+.4f})")
    for k, (group, _) in enumerate(GROUPS):
        print(f"  {group}: F1 {f[i, j, k]:.3f}, target {target[i, j, k]:.3f}")
    print(f"# wall time {time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({
            "context_model": str(args.context_model), "paper_model": str(args.paper_model),
            "weights": weights.tolist(), "biases": biases.tolist(),
            "groups": [g for g, _ in GROUPS], "f1": f.tolist(), "target": target.tolist(),
            "margin": margin.tolist(), "choice": {"w": float(weights[i]),
                                                  "b": float(biases[j])}}, indent=1))


if __name__ == "__main__":
    main()
