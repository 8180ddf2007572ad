"""SS-3D-Clump CPU speed under two torch builds, measured in one run.

Run with ``python benchmarks/bench_torch_versions.py --old /path/to/other/python``
(``--rounds N``, ``--code DIR`` to import the package from another source tree,
``--json FILE``).  The interpreter running this script is the "new" side.  Both sides
import the same source tree (``--code``, default this checkout), so only torch differs.

Rounds alternate old, new, old, new, ... each in a fresh subprocess, so drifting machine
load hits both alike.  A round measures, with torch's default thread count:

* ``infer()``: candidates per second through :func:`glue_ssclump.core.model.infer` on
  2,048 random 30^3 samples (the path ``verify`` uses), best of 3 passes;
* training: samples per second of the model's own training path (channels-last,
  folded input BatchNorm, fast dropout; forward + backward + SGD step, batch 128, as
  :func:`glue_ssclump.core.training.train` runs it), best of 6 steps after 2 warm-up
  steps.

Printed: the best and median over the rounds per side, and new / old ratios.

To make the old side (torch 2.13.0, the CPU wheel on this machine's disk, with what the
model code imports)::

    python3 -m venv /tmp/venv213
    /tmp/venv213/bin/pip install torch==2.13.0 numpy scipy astropy scikit-learn pluggy tqdm matplotlib
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure() -> dict:
    """One round in this interpreter: torch version, infer and training rates."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from glue_ssclump.core.device import tune_cpu_allocator
    from glue_ssclump.core.model import build_model, infer

    tune_cpu_allocator()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build_model().eval()
    x = rng.random((2048, 1, 30, 30, 30), dtype=np.float32)
    infer(model, x[:256], device="cpu")  # first oneDNN primitive creation, not timed
    infer_rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        infer(model, x, device="cpu")
        infer_rates.append(len(x) / (time.perf_counter() - t0))

    cl = torch.channels_last_3d
    bs = 128
    net = build_model().train().to(memory_format=cl)
    xb = torch.from_numpy(x[:bs]).contiguous(memory_format=cl)
    yb = torch.from_numpy(rng.integers(0, 2, bs))
    opt = torch.optim.SGD(net.parameters(), lr=0.003)
    train_rates = []
    for i in range(8):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(xb), yb).backward()
        opt.step()
        if i >= 2:
            train_rates.append(bs / (time.perf_counter() - t0))
    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "infer": max(infer_rates), "train": max(train_rates)}


def _round(python: str, code: Path) -> dict:
    env_code = f"import sys; sys.path.insert(0, {str(code)!r}); sys.path.insert(0, " \
               f"{str(Path(__file__).parent)!r}); import bench_torch_versions as b, json; " \
               "print(json.dumps(b.measure()))"
    out = subprocess.run([python, "-c", env_code], check=True, capture_output=True,
                         text=True, cwd=code)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True, help="the other interpreter (old torch)")
    ap.add_argument("--new", default=sys.executable, help="default: this interpreter")
    ap.add_argument("--code", type=Path, default=ROOT, help="source tree both import")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per side")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)

    runs: dict[str, list[dict]] = {"old": [], "new": []}
    for i in range(args.rounds):
        for side in ("old", "new"):
            rec = _round(getattr(args, side), args.code)
            runs[side].append(rec)
            print(f"round {i + 1} {side:3s} torch {rec['torch']:16s} infer "
                  f"{rec['infer']:7.0f}/s  train {rec['train']:6.0f}/s", flush=True)

    report: dict = {"rounds": args.rounds, "runs": runs, "summary": {}}
    print(f"\n{'':18s}{'torch':>18s}{'infer best':>12s}{'median':>9s}"
          f"{'train best':>12s}{'median':>9s}")
    for side in ("old", "new"):
        s = {k: (max(r[k] for r in runs[side]), statistics.median(r[k] for r in runs[side]))
             for k in ("infer", "train")}
        report["summary"][side] = {"torch": runs[side][0]["torch"], **{
            f"{k}_{stat}": v for k, (best, med) in s.items()
            for stat, v in (("best", best), ("median", med))}}
        print(f"{side:18s}{runs[side][0]['torch']:>18s}{s['infer'][0]:12.0f}"
              f"{s['infer'][1]:9.0f}{s['train'][0]:12.0f}{s['train'][1]:9.0f}")
    o, n = report["summary"]["old"], report["summary"]["new"]
    ratios = {k: n[k] / o[k] for k in ("infer_best", "infer_median", "train_best",
                                       "train_median")}
    report["ratio_new_over_old"] = ratios
    print("new / old: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
