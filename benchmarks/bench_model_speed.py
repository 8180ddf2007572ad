"""SS-3D-Clump network speed on the CPU, Constrained-KMeans speed, and what each tuning gave.

Run with ``python benchmarks/bench_model_speed.py`` (``--quick`` for fewer repeats and
no batch-size sweep, ``--compile`` to also try ``torch.compile`` (minutes of compile
time), ``--json FILE`` to write the figures).

Printed, all measured in the same run:

1. The arithmetic: multiply-adds per sample (:func:`count_macs`) and a matrix-multiply
   peak (``torch.mm`` of 2048 x 2048 fp32, GFLOP/s, with all threads and with one; the
   better is the peak; measured again at the end: the difference shows how much other
   processes took).  The FLOP bound is ``peak / (2 * MACs)`` samples per second.
2. Inference, candidates per second, interleaved variants (each repeated; best and
   median of the repeats):

   * ``baseline``: plain eager fp32 (:func:`reference_features`: BatchNorm modules,
     PyTorch's ``max_pool3d``) - NCDHW, ``torch.no_grad``, batch 256, glibc's default
     allocator behaviour;
   * ``+ pool, BN folded``: the model's own eval path (the stem pool as three pairwise
     maxima, the residual block's BatchNorms folded into its convolutions);
   * ``+ malloc``: :func:`tune_cpu_allocator` (large buffers reused, not re-faulted);
   * ``+ inference_mode + channels_last_3d``: the configuration :func:`infer` uses;
   * ``infer()``: the helper end to end from a numpy array (input copy, outputs);
   * ``jit.freeze``: TorchScript trace + freeze + optimize_for_inference (BN folding,
     oneDNN fusions), for comparison;
   * ``torch.compile`` (with ``--compile``), compile time reported.

   Every variant's probabilities and features are asserted equal to the baseline's
   within float tolerance.  Then a batch-size sweep, with all threads and with one
   (on shared cores OpenMP barriers wait for descheduled threads), for ``infer``.
3. Training, samples per second of forward + backward + SGD step (cross-entropy):
   baseline (the plain eager network, NCDHW, default allocator, batch 128) against the
   allocator tuning, channels-last, and the model's own training path (input
   BatchNorm folded into the stem so no input gradient is computed; fast dropout
   masks), at batch 128 and 256 and with one thread.  One step from identical
   weights (dropout off, float64) is asserted to give the same gradients for every
   variant.
4. Per-layer forward time of the tuned configuration (ms per batch, share, GFLOP/s).
5. Constrained-KMeans on 25,000 x 256 features (two classes, 200 seeds), and on
   structureless noise (the slow case: many iterations).

The machine's cores may be shared with other processes: timings are noisy.  "best"
(the fastest repeat) is the better estimate of what the code can do, "median" of what
it did; CPU seconds per sample (process time) are printed beside.
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import ctypes.util
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a plain script from any directory
    sys.path.insert(0, str(ROOT))

from glue_ssclump.core.ckmeans import constrained_kmeans  # noqa: E402
from glue_ssclump.core.device import tune_cpu_allocator  # noqa: E402
from glue_ssclump.core.model import (  # noqa: E402
    _conv_bn_eval,
    _max_pool2_same,
    build_model,
    count_macs,
    infer,
    reference_features,
)

CL = torch.channels_last_3d


def plain_forward(m: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits of the plain eager network (:func:`reference_features`), no fast paths."""
    return m.head(reference_features(m, x))


# -- glibc allocator switch (the benchmark compares both behaviours in one process) -----

_libc = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):
        _libc = None


def set_malloc(tuned: bool) -> None:
    """Tuned thresholds, or glibc's steady state (mmap threshold 32 MiB, trim 64 MiB)."""
    if _libc is None:
        return
    mmap_t, trim_t = (256 * 2**20, 1024 * 2**20) if tuned else (32 * 2**20, 64 * 2**20)
    _libc.mallopt(-3, mmap_t)
    _libc.mallopt(-1, trim_t)


# -- timing helpers ------------------------------------------------------------------------

def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def mm_peak(reps: int) -> float:
    """Best GFLOP/s of a 2048 x 2048 fp32 matrix product over ``reps`` repeats."""
    a = torch.randn(2048, 2048)
    b = torch.randn(2048, 2048)
    torch.mm(a, b)
    best = min(timed(lambda: torch.mm(a, b))[0] for _ in range(reps))
    return 2 * 2048**3 / best / 1e9


def interleave(variants: dict[str, tuple[Callable[[], object], int, Callable[[], None]]],
               reps: int, probe: list[float] | None = None) -> dict[str, dict[str, float]]:
    """Time variants round-robin (so load changes hit all alike); per-sample figures.

    ``variants[name] = (fn, samples per call, setup)``; ``setup`` runs before every call
    (allocator mode, thread count).  With ``probe`` (a list), one
    2048^2 ``torch.mm`` per round is timed with the starting thread count and its
    GFLOP/s appended: this machine's speed drifts by up to 2x within a run, so the
    FLOP bound is also given as measured alongside the variants.
    """
    threads = torch.get_num_threads()
    if probe is not None:
        a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    walls: dict[str, list[float]] = {k: [] for k in variants}
    cpus: dict[str, list[float]] = {k: [] for k in variants}
    for fn, _, setup in variants.values():  # warm-up
        setup()
        fn()
    for _ in range(reps):
        for name, (fn, _, setup) in variants.items():
            setup()
            w, c = timed(fn)
            walls[name].append(w)
            cpus[name].append(c)
        if probe is not None:
            torch.set_num_threads(threads)
            probe.append(2 * 2048**3 / timed(lambda: torch.mm(a, b))[0] / 1e9)
    torch.set_num_threads(threads)
    out = {}
    for name, (_, n, _) in variants.items():
        out[name] = {
            "best_per_s": n / min(walls[name]),
            "median_per_s": n / float(np.median(walls[name])),
            "cpu_ms_per_sample": 1e3 * float(np.median(cpus[name])) / n,
        }
    return out


def print_table(title: str, res: dict[str, dict[str, float]], base: str, bound: float,
                unit: str, probe: list[float] | None = None, peak0: float | None = None
                ) -> None:
    """``bound`` is from the start's mm peak ``peak0``; with the ``probe`` rates of
    :func:`interleave` a second ratio uses the bound at the probes' median rate."""
    run_bound = bound * float(np.median(probe)) / peak0 if probe and peak0 else None
    print(f"\n{title}")
    print(f"  {'variant':44s} {'best':>9s} {'median':>9s} {'x base':>7s} {'/bound':>7s} "
          + (f"{'/run-bd':>7s} " if run_bound else "") + f"{'CPU ms/smp':>10s}")
    b = res[base]["best_per_s"]
    for name, r in res.items():
        run = f"{r['median_per_s'] / run_bound:7.3f} " if run_bound else ""
        print(f"  {name:44s} {r['best_per_s']:9.1f} {r['median_per_s']:9.1f} "
              f"{r['best_per_s'] / b:7.2f} {r['best_per_s'] / bound:7.3f} {run}"
              f"{r['cpu_ms_per_sample']:10.2f}")
    print(f"  ({unit}; '/bound' = best / FLOP bound at the start's mm peak)")
    if run_bound:
        print(f"  (torch.mm between the rounds: median {np.median(probe):.1f} GFLOP/s, "
              f"{min(probe):.1f}-{max(probe):.1f}, start {peak0:.1f}; '/run-bd' = median / "
              f"the FLOP bound at that median, {run_bound:.0f} {unit.split(';')[0]})")


def setup_fn(malloc: bool, threads: int = 2) -> Callable[[], None]:
    def setup() -> None:
        set_malloc(malloc)
        torch.set_num_threads(threads)
    return setup


# -- inference -------------------------------------------------------------------------------

def bench_inference(args: argparse.Namespace, bound: float, report: dict) -> None:
    torch.manual_seed(0)
    model = build_model().eval()
    model_cl = copy.deepcopy(model).to(memory_format=CL)
    rng = np.random.default_rng(0)
    bs = 256
    x_np = rng.random((bs, 1, 30, 30, 30), dtype=np.float32)
    x = torch.from_numpy(x_np)
    x_cl = x.contiguous(memory_format=CL)
    threads = torch.get_num_threads()

    def eager_nograd(m: torch.nn.Module, inp: torch.Tensor, plain: bool = False
                     ) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad():
                f = reference_features(m, inp) if plain else m.features(inp)
                return f, torch.softmax(m.head(f), 1)[:, 1]
        return run

    def eager_inference(m: torch.nn.Module, inp: torch.Tensor) -> Callable[[], object]:
        def run() -> object:
            with torch.inference_mode():
                f = m.features(inp)
                return f, torch.softmax(m.head(f), 1)[:, 1]
        return run

    base_setup = setup_fn(malloc=False, threads=threads)
    tuned_setup = setup_fn(malloc=True, threads=threads)

    variants: dict[str, tuple[Callable[[], object], int, Callable[[], None]]] = {
        "baseline (plain eager NCDHW no_grad)": (eager_nograd(model, x, plain=True), bs,
                                                 base_setup),
        "+ pairwise-max pool, BN folded": (eager_nograd(model, x), bs, base_setup),
        "+ malloc tuning": (eager_nograd(model, x), bs, tuned_setup),
        "+ inference_mode + channels_last_3d": (eager_inference(model_cl, x_cl), bs,
                                                tuned_setup),
        "infer() from numpy, batch 256": (lambda: infer(model_cl, x_np, batch_size=bs), bs,
                                          tuned_setup),
    }
    if threads > 1:
        variants["infer() from numpy, batch 256, 1 thread"] = (
            lambda: infer(model_cl, x_np, batch_size=bs), bs, setup_fn(malloc=True, threads=1))

    # correctness: every variant against the baseline
    base_setup()
    ref_f, ref_p = eager_nograd(model, x, plain=True)()
    tuned_setup()
    with torch.no_grad():
        t0 = time.perf_counter()
        frozen = torch.jit.optimize_for_inference(
            torch.jit.freeze(torch.jit.trace(copy.deepcopy(model_cl).eval(), x_cl[:2])))
        jit_s = time.perf_counter() - t0

    def jit_run() -> object:
        with torch.no_grad():
            return None, torch.softmax(frozen(x_cl), 1)[:, 1]

    variants[f"jit.freeze + channels_last ({jit_s:.0f} s to build)"] = (jit_run, bs,
                                                                        tuned_setup)
    if args.compile:
        t0 = time.perf_counter()
        compiled = torch.compile(model_cl)
        with torch.inference_mode():
            compiled(x_cl)
        compile_s = time.perf_counter() - t0

        def compiled_run() -> object:
            with torch.inference_mode():
                logits = compiled(x_cl)
                return None, torch.softmax(logits, 1)[:, 1]

        variants[f"torch.compile + channels_last ({compile_s:.0f} s)"] = (compiled_run, bs,
                                                                          tuned_setup)
    for name, (fn, _, setup) in variants.items():
        setup()
        out = fn()
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], np.ndarray):
            p, f = out  # infer() returns (probabilities, features)
            p, f = torch.from_numpy(p), torch.from_numpy(f)
        else:
            f, p = out
        torch.testing.assert_close(p, ref_p, rtol=1e-4, atol=1e-5, msg=name)
        if f is not None:
            torch.testing.assert_close(f, ref_f, rtol=1e-4, atol=1e-4, msg=name)
    print("\n  all inference variants agree with the baseline (probabilities within 1e-5)")

    probe: list[float] = []
    res = interleave(variants, args.reps, probe)
    print_table(f"Inference, candidates/s (batch {bs}, {threads} threads)", res,
                next(iter(variants)), bound, "candidates/s", probe,
                report["mm_gflops_start"])
    report["inference"] = res
    report["inference_mm_gflops_between_rounds"] = probe

    tuned_setup()
    if not args.quick:
        sweep = {}
        for b in (32, 64, 128, 256, 512):
            xb = rng.random((b, 1, 30, 30, 30), dtype=np.float32)
            sweep[f"infer() batch {b}"] = (lambda xb=xb, b=b: infer(model_cl, xb, batch_size=b),
                                           b, tuned_setup)
            if threads > 1:
                sweep[f"infer() batch {b}, 1 thread"] = (
                    lambda xb=xb, b=b: infer(model_cl, xb, batch_size=b), b,
                    setup_fn(malloc=True, threads=1))
        res = interleave(sweep, args.reps)
        print_table("Inference batch size and threads", res, next(iter(sweep)), bound,
                    "candidates/s")
        report["inference_sweep"] = res
    torch.set_num_threads(threads)


# -- training --------------------------------------------------------------------------------

def bench_training(args: argparse.Namespace, bound: float, report: dict) -> None:
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    init = build_model().state_dict()
    rng = np.random.default_rng(1)

    def make_step(bs: int, cl: bool, plain: bool, dropout: float = 0.5,
                  dtype: torch.dtype = torch.float32):
        model = build_model(dropout=dropout)
        model.load_state_dict(init)
        model = model.to(dtype).train()
        xb = torch.from_numpy(rng.random((bs, 1, 30, 30, 30))).to(dtype)
        yb = torch.from_numpy(rng.integers(0, 2, bs))
        if cl:
            model = model.to(memory_format=CL)
            xb = xb.contiguous(memory_format=CL)
        opt = torch.optim.SGD(model.parameters(), lr=0.003)
        forward = (lambda inp: plain_forward(model, inp)) if plain else model

        def step() -> object:
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(forward(xb), yb)
            loss.backward()
            opt.step()
            return model

        return step

    base_setup = setup_fn(malloc=False, threads=threads)
    tuned_setup = setup_fn(malloc=True, threads=threads)

    # correctness: one step, dropout off, same weights and data -> same gradients.  In
    # float64: float32 rounding (1e-7) can flip a ReLU or a max-pool choice somewhere
    # and move a gradient by 1e-2 between two equally valid evaluations.
    grads = {}
    for name, cl, plain in (("base", False, True), ("base-cl", True, True),
                            ("tuned-cl", True, False)):
        rng = np.random.default_rng(1)
        model = make_step(16, cl, plain, dropout=0.0, dtype=torch.float64)()
        grads[name] = {k: p.grad.detach().clone() for k, p in model.named_parameters()}
    for name in ("base-cl", "tuned-cl"):
        for k, g in grads["base"].items():
            if k in ("res_conv1.bias", "res_conv2.bias"):
                continue  # followed by a training-mode BatchNorm: exactly 0 plus noise
            torch.testing.assert_close(grads[name][k], g, rtol=1e-9, atol=1e-12,
                                       msg=f"{name}: {k}")
    print("\n  training variants give the same gradients as the baseline (float64, "
          "dropout off)")

    rng = np.random.default_rng(1)
    bs = 128
    variants = {
        f"baseline (plain eager NCDHW), batch {bs}": (make_step(bs, False, True), bs,
                                                      base_setup),
        "+ malloc tuning": (make_step(bs, False, True), bs, tuned_setup),
        "+ channels_last_3d": (make_step(bs, True, True), bs, tuned_setup),
        "+ folded input BN, fast dropout (= train())": (make_step(bs, True, False), bs,
                                                         tuned_setup),
        "  the same, batch 256": (make_step(256, True, False), 256, tuned_setup),
    }
    if threads > 1:
        variants["  the same, batch 128, 1 thread"] = (
            make_step(bs, True, False), bs, setup_fn(malloc=True, threads=1))
    if not args.quick:
        for b in (64, 512):
            variants[f"  the same, batch {b}"] = (make_step(b, True, False), b, tuned_setup)
    probe: list[float] = []
    res = interleave(variants, max(2, args.reps - 1), probe)
    # forward + backward is ~3x the forward arithmetic
    print_table("Training, samples/s (forward + backward + SGD step)", res,
                next(iter(variants)), bound / 3, "samples/s; bound = FLOP bound / 3",
                probe, report["mm_gflops_start"])
    report["training"] = res
    report["training_mm_gflops_between_rounds"] = probe


# -- per-layer -------------------------------------------------------------------------------

def bench_layers(args: argparse.Namespace, report: dict) -> None:
    set_malloc(True)
    torch.manual_seed(0)
    m = build_model().eval().to(memory_format=CL)
    bs = 128
    x = torch.rand(bs, 1, 30, 30, 30).contiguous(memory_format=CL)
    macs = count_macs(m, per_layer=True)
    acts: dict[str, torch.Tensor] = {}

    def stages() -> list[tuple[str, Callable[[], torch.Tensor], int]]:
        return [
            ("input BN", lambda: m.input_bn(x), 0),
            ("stem conv 1->16 s2 (+ReLU)", lambda: F.relu(m.stem_conv(acts["input BN"])),
             macs["stem_conv"]),
            ("stem pool 2^3 s1", lambda: _max_pool2_same(acts["stem conv 1->16 s2 (+ReLU)"]),
             0),
            ("res conv1 16->32 s2 +BN+ReLU",
             lambda: F.relu(_conv_bn_eval(m.res_conv1, m.res_bn1, acts["stem pool 2^3 s1"])),
             macs["res_conv1"]),
            ("res conv2 32->32 +BN",
             lambda: _conv_bn_eval(m.res_conv2, m.res_bn2,
                                   acts["res conv1 16->32 s2 +BN+ReLU"]),
             macs["res_conv2"]),
            ("skip conv 1^3 s2 + add + ReLU",
             lambda: F.relu(acts["res conv2 32->32 +BN"]
                            + m.res_skip(acts["stem pool 2^3 s1"])), macs["res_skip"]),
            ("conv3 32->64 s2", lambda: m.conv3(acts["skip conv 1^3 s2 + add + ReLU"]),
             macs["conv3"]),
            ("dense 4096-512-256-16-2",
             lambda: m.head(F.relu(m.fc2(F.relu(m.fc1(
                 acts["conv3 32->64 s2"].permute(0, 2, 3, 4, 1).reshape(bs, -1)))))),
             macs["fc1"] + macs["fc2"] + macs["fc3"] + macs["fc_out"]),
        ]

    times: dict[str, list[float]] = {}
    with torch.inference_mode():
        for _ in range(args.reps + 1):
            for name, fn, _ in stages():
                t0 = time.perf_counter()
                acts[name] = fn()
                times.setdefault(name, []).append(time.perf_counter() - t0)
    total = sum(min(v) for v in times.values())
    print(f"\nPer-layer forward (inference configuration, batch {bs}, best of {args.reps + 1})")
    print(f"  {'stage':34s} {'ms':>8s} {'share':>6s} {'MMAC/smp':>9s} {'GFLOP/s':>8s}")
    layers = {}
    for name, _, mac in stages():
        t = min(times[name])
        gf = 2 * mac * bs / t / 1e9 if mac else float("nan")
        print(f"  {name:34s} {1e3 * t:8.1f} {t / total:6.1%} {mac / 1e6:9.2f} {gf:8.1f}")
        layers[name] = {"ms": 1e3 * t, "share": t / total, "macs": mac}
    report["layers"] = layers


# -- Constrained-KMeans ----------------------------------------------------------------------

def bench_ckmeans(args: argparse.Namespace, report: dict) -> None:
    rng = np.random.default_rng(0)
    n, d = 25_000, 256
    truth = (rng.random(n) < 0.3).astype(np.int64)
    centres = rng.normal(size=(2, d)).astype(np.float32)
    X = np.maximum(centres[truth] * 0.6 + rng.normal(size=(n, d)).astype(np.float32), 0)
    seeds = np.full(n, -1)
    idx = rng.choice(n, 200, replace=False)
    seeds[idx] = truth[idx]
    noise = rng.normal(size=(n, d)).astype(np.float32)
    out = {}
    print("\nConstrained-KMeans, 25,000 x 256 float32 features, 200 seeds")
    for name, data in (("two classes (ReLU features)", X), ("structureless noise", noise)):
        ts = []
        for _ in range(3 if name.startswith("two") else 1):
            t0 = time.perf_counter()
            r = constrained_kmeans(data, seeds)
            ts.append(time.perf_counter() - t0)
        acc = float(np.mean(r.labels == truth))
        print(f"  {name:30s} best {min(ts):6.3f} s  median {np.median(ts):6.3f} s  "
              f"{r.n_iter:3d} iterations  ({1e3 * min(ts) / r.n_iter:.1f} ms/iter)  "
              f"agreement with truth {acc:.3f}")
        out[name] = {"best_s": min(ts), "median_s": float(np.median(ts)), "n_iter": r.n_iter}
    report["ckmeans"] = out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, no sweeps")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile")
    ap.add_argument("--reps", type=int, default=None, help="repeats per variant")
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    ap.add_argument("--skip", nargs="*", default=[],
                    choices=["inference", "training", "layers", "ckmeans"])
    args = ap.parse_args(argv)
    if args.reps is None:
        args.reps = 2 if args.quick else 4

    report: dict = {
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "load_avg_start": os.getloadavg(),
    }
    torch.manual_seed(0)
    macs = count_macs(build_model())
    threads = torch.get_num_threads()
    peak_all = mm_peak(10)
    torch.set_num_threads(1)
    peak_one = mm_peak(10)
    torch.set_num_threads(threads)
    # The bound uses the best matrix-multiply rate this machine gave, whatever the
    # thread count (on shared cores one thread can beat two).
    peak0 = max(peak_all, peak_one)
    bound = peak0 * 1e9 / (2 * macs)
    print(f"torch {torch.__version__}, {threads} threads, {os.cpu_count()} "
          f"cores, load average {os.getloadavg()[0]:.1f}")
    print(f"SSClumpNet: {macs / 1e6:.2f} M multiply-adds per sample "
          f"({2 * macs / 1e6:.1f} MFLOP)")
    print(f"torch.mm 2048^2 fp32 peak: {peak_all:.1f} GFLOP/s with {threads} threads, "
          f"{peak_one:.1f} with 1 -> FLOP bound {bound:.0f} candidates/s inference, "
          f"{bound / 3:.0f} samples/s training")
    report.update(mm_gflops_all_threads=peak_all, mm_gflops_one_thread=peak_one)
    print("targets: inference >= 1,500 candidates/s, training >= 500 samples/s")
    report.update(macs=macs, mm_gflops_start=peak0, flop_bound_inference=bound)

    if "inference" not in args.skip:
        bench_inference(args, bound, report)
    if "training" not in args.skip:
        bench_training(args, bound, report)
    if "layers" not in args.skip:
        bench_layers(args, report)
    tune_cpu_allocator()
    set_malloc(True)
    if "ckmeans" not in args.skip:
        bench_ckmeans(args, report)

    peak1 = mm_peak(10)
    report.update(mm_gflops_end=peak1, load_avg_end=os.getloadavg())
    print(f"\ntorch.mm peak at the end: {peak1:.1f} GFLOP/s (start {peak0:.1f}); load "
          f"average {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=float))
    return report


if __name__ == "__main__":
    main()
