"""Accuracy benchmark: SS-3D-Clump against three baselines on synthetic cubes.

For each random seed r (cube seed 100 + r; the default model was trained on cube seeds
0-3), ClumpFind candidates of a synthetic cube are marked true/false against the
injected clumps; at most 1% of the candidates (at least 10 per class) are labelled as
seeds; every method is scored on all the *other* candidates:

  (a) the detector alone (every candidate called a clump),
  (b) the same CNN trained supervised on the seeds only (same init, same number of
      gradient steps as SS-3D-Clump),
  (c) a peak-SNR threshold tuned on the seeds (best F1 on the seeds),
  (d) SS-3D-Clump from scratch (the paper's method),
  (e) SS-3D-Clump fine-tuned from the shipped default model (the normal path), when
      the default model exists.

Then the real L1448 cube: ClumpFind and FellWalker candidates, seeds by the
cross-match rule of the demo, kept / rejected counts.

Usage::

    python benchmarks/bench_accuracy.py [--runs 3] [--epochs 8] [--passes 2] [--shape 64 256 256]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from glue_ssclump.core.metrics import binary_report
from glue_ssclump.core.model import build_model
from glue_ssclump.core.pretrain import pick_seeds, synthetic_candidate_set
from glue_ssclump.core.progress import Progress
from glue_ssclump.core.training import (
    DEFAULT_CHECKPOINT,
    TrainConfig,
    _recalibrate_batchnorm,
    balanced_cross_entropy,
    load_initial_model,
    train,
)
from glue_ssclump.core.verify import predict


def supervised_on_seeds(samples, seeds: np.ndarray, config: TrainConfig,
                        n_steps: int) -> torch.nn.Module:
    """Baseline (b): the same network, trained only on the seeds for ``n_steps``."""
    torch.manual_seed(config.seed)
    model = build_model()
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    idx = np.flatnonzero(seeds >= 0)
    x_all = torch.as_tensor(samples.get(idx))
    y_all = torch.as_tensor(seeds[idx], dtype=torch.int64)
    rng = np.random.default_rng(config.seed)
    model.train()
    for _ in range(n_steps):
        pick = rng.choice(idx.size, size=min(config.batch_size, idx.size), replace=False)
        loss = balanced_cross_entropy(model(x_all[pick]), y_all[pick])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    # SS-3D-Clump re-estimates BatchNorm statistics after every epoch (training.py); do
    # the same here on the seeds, or Keras' slow running averages leave the eval-mode
    # network near its initial statistics and the baseline collapses to one class.
    _recalibrate_batchnorm(model, samples, idx, config.batch_size, torch.device("cpu"),
                           Progress(), "baseline")
    model.eval()
    return model


def snr_threshold(snr: np.ndarray, seeds: np.ndarray) -> float:
    """Baseline (c): the peak-SNR cut with the best F1 on the seeds."""
    idx = np.flatnonzero(seeds >= 0)
    best, best_f1 = 0.0, -1.0
    for cut in np.unique(snr[idx]):
        f1 = binary_report(seeds[idx], (snr[idx] >= cut).astype(float), 0.5)["F1"]
        if f1 > best_f1:
            best, best_f1 = float(cut), f1
    return best


def score(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {k: float(v) for k, v in binary_report(y, p, 0.5).items()}


def _show(log, name: str, m: dict[str, float]) -> None:
    log(f"  {name:<38} P {m['P']:.3f} R {m['R']:.3f} F1 {m['F1']:.3f} "
        f"Acc {m['Acc']:.3f} AUC {m['AUC']:.3f}"
        + (f"  ({m['seconds']:.0f} s)" if "seconds" in m else ""))


def one_run(r: int, shape, epochs: int, passes: int, log) -> dict[str, dict[str, float]]:
    t0 = time.perf_counter()
    cs = synthetic_candidate_set(100 + r, shape)
    y = cs.is_true.astype(np.int64)
    seeds = pick_seeds(y, fraction=0.01, min_per_class=10, seed=r)
    test = seeds < 0
    log(f"run {r}: {y.size} candidates, {1 - y.mean():.0%} false, "
        f"{int((seeds >= 0).sum())} seeds ({(seeds >= 0).mean():.2%}), "
        f"cube+detection {time.perf_counter() - t0:.0f} s")
    samples = cs.samples()
    config = TrainConfig(epochs=epochs, passes=passes, seed=r)
    out: dict[str, dict[str, float]] = {}

    out["(a) detector alone"] = score(y[test], np.ones(test.sum()))
    _show(log, "(a) detector alone", out["(a) detector alone"])

    cut = snr_threshold(np.asarray(cs.catalog["snr_peak"]), seeds)
    snr = np.asarray(cs.catalog["snr_peak"])
    out["(c) peak-SNR cut on seeds"] = score(y[test], (snr[test] >= cut).astype(float))
    out["(c) peak-SNR cut on seeds"]["cut"] = cut
    _show(log, f"(c) peak-SNR cut on seeds (>= {cut:.1f})", out["(c) peak-SNR cut on seeds"])

    t0 = time.perf_counter()
    torch.manual_seed(r)
    res = train(samples, seeds, config)
    p = predict(res.model, samples)
    out["(d) SS-3D-Clump (scratch)"] = score(y[test], p[test])
    out["(d) SS-3D-Clump (scratch)"]["seconds"] = time.perf_counter() - t0
    _show(log, "(d) SS-3D-Clump (scratch)", out["(d) SS-3D-Clump (scratch)"])
    steps = sum(int(np.ceil(rec.n_selected / config.batch_size)) * config.passes
                for rec in res.history)

    t0 = time.perf_counter()
    model_b = supervised_on_seeds(samples, seeds, config, steps)
    p_b = predict(model_b, samples)
    out["(b) CNN supervised on seeds"] = score(y[test], p_b[test])
    out["(b) CNN supervised on seeds"]["seconds"] = time.perf_counter() - t0
    _show(log, "(b) CNN supervised on seeds", out["(b) CNN supervised on seeds"])

    if DEFAULT_CHECKPOINT.is_file():
        t0 = time.perf_counter()
        model0 = load_initial_model("default", "cpu")
        p0 = predict(model0, samples)
        out["(e0) default model, no fine-tuning"] = score(y[test], p0[test])
        _show(log, "(e0) default model, no fine-tuning", out["(e0) default model, no fine-tuning"])
        res_e = train(samples, seeds, TrainConfig(epochs=max(epochs // 2, 3), passes=passes,
                                                    seed=r),
                      model=model0)
        pe = predict(res_e.model, samples)
        out["(e) SS-3D-Clump (fine-tuned default)"] = score(y[test], pe[test])
        out["(e) SS-3D-Clump (fine-tuned default)"]["seconds"] = time.perf_counter() - t0
        _show(log, "(e) SS-3D-Clump (fine-tuned default)",
              out["(e) SS-3D-Clump (fine-tuned default)"])
    return out


def real_cube(epochs: int, log) -> dict[str, dict[str, int]]:
    from glue_ssclump.core.cube import read_cube
    from glue_ssclump.core.pipeline import cross_match_seeds, detect, verify

    cube = read_cube(Path(__file__).resolve().parents[1] / "glue_ssclump" / "data"
                     / "l1448_13co.fits")
    out = {}
    for method in ("clumpfind", "fellwalker"):
        det = detect(cube, method, crossmatch_with="dendrogram")
        seeds = cross_match_seeds(det.catalog)
        init = "default" if DEFAULT_CHECKPOINT.is_file() else "scratch"
        v = verify(cube.data, det.labels, det.catalog, seeds,
                   config=TrainConfig(epochs=epochs), init=init)
        c = v.counts()
        c.update(candidates=len(det.catalog), seeds_clump=v.n_seeds["clump"],
                 seeds_not=v.n_seeds["not_clump"])
        out[method] = c
        log(f"L1448 {method}: {c['candidates']} candidates, seeds {c['seeds_clump']}+/"
            f"{c['seeds_not']}-: kept {c['clump']}, rejected {c['rejected']}, "
            f"uncertain {c['uncertain']}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--shape", type=int, nargs=3, default=(64, 256, 256))
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()
    runs = [one_run(r, tuple(args.shape), args.epochs, args.passes, print)
            for r in range(args.runs)]
    print("\nmean (min-max) over runs, scored on the non-seed candidates:")
    summary = {}
    for name in runs[0]:
        summary[name] = {}
        line = f"  {name:<38}"
        for k in ("P", "R", "F1", "Acc", "AUC"):
            vals = np.array([r[name][k] for r in runs if name in r])
            summary[name][k] = [float(vals.mean()), float(vals.min()), float(vals.max())]
            line += f" {k} {vals.mean():.3f} ({vals.min():.3f}-{vals.max():.3f})"
        print(line)
    real = {} if args.skip_real else real_cube(args.epochs, print)
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "summary": summary,
                                               "l1448": real}, indent=1))


if __name__ == "__main__":
    main()
