"""Accuracy benchmark: SS-3D-Clump against three baselines on synthetic cubes.

For each random seed r (cube seed 100 + r; the default model was trained on cube seeds
0-3), ClumpFind candidates of a synthetic cube are marked true/false against the
injected clumps (true: an injected clump of peak SNR >= 5 within 2 pixels and 2
channels of the candidate's peak); at most 1% of the candidates (at least 10 per class)
are labelled as seeds; every method is scored on all the *other* candidates:

  (a) the detector alone (every candidate called a clump),
  (b) the same CNN trained supervised on the seeds only (same init, same number of
      gradient steps as SS-3D-Clump from scratch),
  (c) a peak-SNR threshold tuned on the seeds (best F1 on the seeds),
  (d) SS-3D-Clump from scratch (the paper's method; the paper's loop: 40% selection,
      5 passes per epoch),
  (e0) the shipped default model as it is, and
  (e) SS-3D-Clump fine-tuned from it (the normal path).

With ``--context-models`` the pretrained context model's rows of the morphology path
below ((e0) at p >= 0.5, the seeds' best-F1 cut and their ROC elbow; (e1) for several
models) are added; ``--paper-runs N`` trains (b), (d) and (e) only in the first N runs.

Each network is scored at p >= 0.5 and at the 'clusters' threshold
(:func:`~glue_ssclump.core.verify.cluster_threshold`: as many clumps as the final
Constrained-KMeans partition, seeded by the same seeds, holds; for (b) and (e0) a
partition of their own features).  "F1 best-t" is the F1 at the best threshold chosen
*with the truth*: not a method, the ceiling of each ranking.

Ambiguous candidates: the truth cut (SNR 5) falls inside a continuum of injected clumps,
and a candidate's measured peak is off by about 1 rms, so candidates whose nearest
injected clump has an SNR in [4, 6) are labelled by a coin-flip of the noise (the paper
set its ambiguous candidates apart too, scoring them by human confidence).  "F1 unamb."
scores the candidates outside that band; for those inside it the Spearman correlation
of p with the injected SNR is printed (the paper: 0.59 between model confidence and the
mean of 5 human scores).

Then the real L1448 cube: ClumpFind and FellWalker candidates, seeds by the
cross-match rule of the demo, kept / rejected counts at both thresholds.

Usage::

    python benchmarks/bench_accuracy.py [--runs 3] [--epochs 10] [--passes 5] [--shape 64 256 256]

Morphology truth (``--preset morph`` or ``morph_hard``, :mod:`~glue_ssclump.core.
synthetic_morph`): a candidate is true at the peak of a compact injected clump of SNR >= 3
that dominates the extended emission there; false candidates are filament beads, cloud
fragments, pieces of large clumps, truncated clumps and noise peaks, many as bright as the
clumps.  For each of ``--cubes`` cubes (seed 100 + k; the shipped context model was
pretrained on seeds 0-5, the verifier was tuned on seeds 50-51) and each detector
(FellWalker, ClumpFind), ``--runs`` draws of seeds (at most 1 % of the candidates, at
least 10 per class; run r also seeds the training), scored on the other candidates:

  (a) the detector alone,
  (b) a peak-SNR cut placed by the seeds (best F1 on them),
  (c) gradient boosting (scikit-learn) on the catalogue's columns, trained on the seeds,
  (d) the paper's network exactly as now (shipped model fine-tuned by the paper's loop,
      p >= 0.5, ``--morph-epochs`` epochs of ``--morph-passes`` passes; the CPU budget
      allows fewer epochs than ``ssclump verify``'s default 20),
  (e0) the pretrained context model (``arch='context'``, ``--context-models``) as it is:
      p >= 0.5, the cut with the best F1 on the seeds, and the seeds' ROC elbow,
  (e1) with several ``--context-models``: their mean p, same rules,
  (e2) a logistic regression fitted on the seeds to logit(p) of (e0) and log peak SNR
      (also on 'benchmark'), p >= 0.5,
  (e) (e0) fine-tuned by the paper's loop (``--ft-epochs`` x ``--ft-passes``), p >= 0.5,
  (f) the default verifier (``arch='ensemble'``: the shipped context and paper
      networks, no training, p >= 0.5; also on 'benchmark').

Usage::

    python benchmarks/bench_accuracy.py --preset morph_hard --cubes 3 --runs 3 \
        --json benchmarks/results/accuracy_morph_hard.json
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from glue_ssclump.core.ckmeans import constrained_kmeans
from glue_ssclump.core.metrics import binary_report, f1
from glue_ssclump.core.model import build_model, infer
from glue_ssclump.core.pretrain import pick_seeds, synthetic_candidate_set
from glue_ssclump.core.progress import Progress
from glue_ssclump.core.synthetic import PRESETS, match_candidates
from glue_ssclump.core.training import (
    DEFAULT_CHECKPOINT,
    DEFAULT_CONTEXT_CHECKPOINT,
    TrainConfig,
    _recalibrate_batchnorm,
    balanced_cross_entropy,
    load_initial_model,
    train,
)
from glue_ssclump.core.verify import cluster_threshold, elbow_threshold, verdicts

#: Row of the default verifier (docs/verifier.md).
DEFAULT_ROW = "(f) default verifier: ensemble of context + paper networks, p>=0.5"
#: Injected-SNR band around the truth cut (5) whose candidates are ambiguous.
AMBIGUOUS = (4.0, 6.0)


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


def score(y: np.ndarray, p: np.ndarray, threshold: float = 0.5,
          unambiguous: np.ndarray | None = None) -> dict[str, float]:
    """P/R/F1/Acc/AUC at ``threshold``, the truth-tuned ceiling, F1 without ambiguity."""
    out = {k: float(v) for k, v in binary_report(y, p, threshold).items()}
    out["threshold"] = float(threshold)
    cuts = np.unique(np.quantile(p, np.linspace(0.0, 1.0, 201)))
    out["F1_best_t"] = float(max(f1(y, (p >= t).astype(np.int64)) for t in cuts))
    if unambiguous is not None:
        out["F1_unamb"] = float(binary_report(y[unambiguous], p[unambiguous],
                                              threshold)["F1"])
    return out


def _show(log, name: str, m: dict[str, float]) -> None:
    log(f"  {name:<44} t {m['threshold']:.3f} P {m['P']:.3f} R {m['R']:.3f} "
        f"F1 {m['F1']:.3f} Acc {m['Acc']:.3f} AUC {m['AUC']:.3f} | F1 best-t "
        f"{m['F1_best_t']:.3f} unamb. {m['F1_unamb']:.3f}"
        + (f"  ({m['seconds']:.0f} s)" if "seconds" in m else ""))


def seed_logistic(p: np.ndarray, snr: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """(e2): logistic regression on the seeds of logit(p) and log peak SNR (standardised,
    C=1, balanced classes); its p for every candidate."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    q = np.clip(p, 1e-4, 1 - 1e-4)
    x = np.column_stack([np.log(q / (1 - q)), np.log(np.maximum(snr, 1e-3))])
    idx = np.flatnonzero(seeds >= 0)
    clf = make_pipeline(StandardScaler(),
                        LogisticRegression(C=1.0, class_weight="balanced"))
    return clf.fit(x[idx], seeds[idx]).predict_proba(x)[:, 1]


@functools.cache
def _default_verifier() -> torch.nn.Module:
    return load_initial_model("default", "cpu", arch="ensemble")


def default_verifier_p(ctx_src) -> np.ndarray | None:
    """(f): p of the default verifier (``arch='ensemble'``, the shipped context and paper
    networks, no training) for context samples; None without the shipped files."""
    if not (DEFAULT_CHECKPOINT.is_file() and DEFAULT_CONTEXT_CHECKPOINT.is_file()):
        return None
    return infer(_default_verifier(), ctx_src)[0]


def context_rows(add, probs: list[np.ndarray], seeds: np.ndarray, label: str = "",
                 seconds: float = 0.0, snr: np.ndarray | None = None) -> None:
    """(e0) the first context model's p: at 0.5, at the seeds' best-F1 cut and at their
    ROC elbow; (e1) with several models, their mean p at 0.5 and at the seeds' cut;
    (e2) with ``snr`` (the candidates' peak SNR), :func:`seed_logistic` at 0.5."""
    known = seeds >= 0
    add(f"(e0) context model{label}, p>=0.5", probs[0], seconds=seconds)
    add(f"(e0) context model{label}, seed-placed threshold", probs[0],
        seed_threshold(probs[0], seeds))
    add(f"(e0) context model{label}, ROC elbow of the seeds", probs[0],
        elbow_threshold(probs[0][known], seeds[known]))
    if len(probs) > 1:
        p_ens = np.mean(probs, axis=0)
        add(f"(e1) context ensemble of {len(probs)}{label}, p>=0.5", p_ens)
        add(f"(e1) context ensemble of {len(probs)}{label}, seed-placed threshold", p_ens,
            seed_threshold(p_ens, seeds))
    if snr is not None:
        add(f"(e2) context model{label} + log peak SNR, logistic on the seeds",
            seed_logistic(probs[0], snr, seeds))


def one_run(r: int, shape, epochs: int, passes: int, log, diffuse_peak: float | None = None,
            context_models=(), label: str = "", paper: bool = True
            ) -> dict[str, dict[str, float]]:
    """Every method on cube 100 + ``r``; ``paper=False`` skips the trained networks
    (b), (d) and (e); ``context_models`` adds the pretrained context model's rows."""
    t0 = time.perf_counter()
    preset = PRESETS["benchmark"]
    if diffuse_peak is not None:
        preset = replace(preset, diffuse_peak=diffuse_peak)
    cs = synthetic_candidate_set(100 + r, shape, preset=preset)
    y = cs.is_true.astype(np.int64)
    seeds = pick_seeds(y, fraction=0.01, min_per_class=10, seed=r)
    test = seeds < 0
    nearest = match_candidates(cs.catalog, cs.truth, snr_min=0.0)
    injected = np.where(nearest >= 0,
                        np.asarray(cs.truth["snr_peak"])[np.maximum(nearest, 0)], 0.0)
    ambiguous = (nearest >= 0) & (injected >= AMBIGUOUS[0]) & (injected < AMBIGUOUS[1])
    unamb = ~ambiguous[test]
    log(f"run {r}: {y.size} candidates, {1 - y.mean():.0%} false, "
        f"{int((seeds >= 0).sum())} seeds ({(seeds >= 0).mean():.2%}), "
        f"{ambiguous.mean():.1%} ambiguous (injected SNR {AMBIGUOUS[0]:g}-{AMBIGUOUS[1]:g}), "
        f"cube+detection {time.perf_counter() - t0:.0f} s")
    samples = cs.samples()
    config = TrainConfig(epochs=epochs, passes=passes, seed=r)
    out: dict[str, dict[str, float]] = {}

    def add(name: str, p: np.ndarray, threshold: float = 0.5, **extra: float) -> None:
        out[name] = score(y[test], p[test], threshold, unamb)
        out[name].update(extra)
        if ambiguous.any() and np.ptp(p[ambiguous]) > 0:
            out[name]["rho_ambiguous"] = float(spearmanr(p[ambiguous],
                                                         injected[ambiguous])[0])
        _show(log, name, out[name])

    def networks(name: str, model: torch.nn.Module, pseudo: np.ndarray | None,
                 seconds: float) -> None:
        p, feats = infer(model, samples)
        if pseudo is None:  # no training partition: one of the model's own features
            pseudo = constrained_kmeans(feats, seeds).labels
        add(f"{name}, p>=0.5", p, seconds=seconds)
        add(f"{name}, clusters", p, cluster_threshold(p, float(np.mean(pseudo == 1))))

    add("(a) detector alone", np.ones(y.size))
    snr = np.asarray(cs.catalog["snr_peak"], dtype=float)
    cut = snr_threshold(snr, seeds)
    add("(c) peak-SNR cut on seeds", snr, cut)

    t0 = time.perf_counter()
    ctx_src = cs.samples(arch="context")
    p_f = default_verifier_p(ctx_src)
    if p_f is not None:
        add(DEFAULT_ROW, p_f, seconds=time.perf_counter() - t0)
    if context_models:
        from glue_ssclump.core.checkpoint import load_checkpoint

        t0 = time.perf_counter()
        probs = [infer(load_checkpoint(path)[0], ctx_src)[0] for path in context_models]
        context_rows(add, probs, seeds, label, time.perf_counter() - t0, snr)
    if not paper:  # the untrained default model only: inference, no training
        if DEFAULT_CHECKPOINT.is_file():
            networks("(e0) default model, no fine-tuning",
                     load_initial_model("default", "cpu"), None, 0.0)
        return out

    t0 = time.perf_counter()
    torch.manual_seed(r)
    res = train(samples, seeds, config)
    networks("(d) SS-3D-Clump (scratch)", res.model, res.pseudo_labels,
             time.perf_counter() - t0)
    steps = sum(int(np.ceil(rec.n_selected / config.batch_size)) * config.passes
                for rec in res.history)

    t0 = time.perf_counter()
    model_b = supervised_on_seeds(samples, seeds, config, steps)
    networks("(b) CNN supervised on seeds", model_b, None, time.perf_counter() - t0)

    if DEFAULT_CHECKPOINT.is_file():
        networks("(e0) default model, no fine-tuning", load_initial_model("default", "cpu"),
                 None, 0.0)
        t0 = time.perf_counter()
        res_e = train(samples, seeds, TrainConfig(epochs=max(epochs // 2, 3), passes=passes,
                                                    seed=r),
                      model=load_initial_model("default", "cpu"))
        networks("(e) SS-3D-Clump (fine-tuned default)", res_e.model, res_e.pseudo_labels,
                 time.perf_counter() - t0)
    return out


def catalogue_features(cat) -> np.ndarray:
    """Baseline (c)'s inputs: SNR, sizes, log npix, log flux, aspect ratios, edge flag."""
    def col(name: str) -> np.ndarray:
        return np.asarray(getattr(cat[name], "value", cat[name]), dtype=float)

    sx, sy, sz = col("size_x"), col("size_y"), col("size_z")
    sky = np.sqrt(np.maximum(sx * sy, 1e-6))
    return np.column_stack([
        col("snr_peak"), sx, sy, sz, np.log(col("npix")),
        np.log(np.maximum(col("flux"), 1e-3)),
        np.maximum(sx, sy) / np.maximum(np.minimum(sx, sy), 1e-3), sz / sky,
        col("touches_edge"),
    ])


def gbm_baseline(features: np.ndarray, seeds: np.ndarray, seed: int) -> np.ndarray:
    """Baseline (c): gradient boosting on the catalogue's columns, trained on the seeds."""
    from sklearn.ensemble import GradientBoostingClassifier

    idx = np.flatnonzero(seeds >= 0)
    clf = GradientBoostingClassifier(random_state=seed).fit(features[idx], seeds[idx])
    return clf.predict_proba(features)[:, 1]


def seed_threshold(p: np.ndarray, seeds: np.ndarray) -> float:
    """The p cut with the best F1 on the seeds (midway between neighbouring values)."""
    idx = np.flatnonzero(seeds >= 0)
    q = np.unique(p[idx])
    cuts = np.concatenate([[q[0]], 0.5 * (q[1:] + q[:-1])]) if q.size > 1 else q
    scores = [f1(seeds[idx], (p[idx] >= c).astype(np.int64)) for c in cuts]
    return float(cuts[int(np.argmax(scores))])


def morph_cube(preset: str, cube_seed: int, runs: int, epochs: int, passes: int, log,
               methods=("fellwalker", "clumpfind"), context_models=(),
               ft_epochs: int = 2, ft_passes: int = 1, ft_runs: int = 99,
               paper_runs: int = 99, label: str = "") -> list[dict[str, dict[str, float]]]:
    """Every method on one morphology-truth cube: one result dict per (detector, run)."""
    from glue_ssclump.core.checkpoint import load_checkpoint
    from glue_ssclump.core.pretrain import morph_candidate_set

    out = []
    for method in methods:
        t0 = time.perf_counter()
        cs = morph_candidate_set(cube_seed, preset, method)
        y = cs.is_true.astype(np.int64)
        log(f"{preset} cube {cube_seed} {method}: {y.size} candidates, {1 - y.mean():.0%} "
            f"false, cube+detection {time.perf_counter() - t0:.0f} s")
        paper_src, ctx_src = cs.samples(arch="paper"), cs.samples(arch="context")
        feats = catalogue_features(cs.catalog)
        snr = feats[:, 0]
        t0 = time.perf_counter()
        # the pretrained models see no seeds: their p is the same in every run
        ctx_probs = [infer(load_checkpoint(path)[0], ctx_src)[0] for path in context_models]
        ctx_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        p_f = default_verifier_p(ctx_src)
        f_seconds = time.perf_counter() - t0
        for r in range(runs):
            seeds = pick_seeds(y, fraction=0.01, min_per_class=10, seed=r)
            test = seeds < 0
            res: dict[str, dict[str, float]] = {"_info": {
                "cube_seed": cube_seed, "run": r, "n": int(y.size),
                "n_seeds": int((seeds >= 0).sum()), "false_fraction": float(1 - y.mean())}}

            def add(name: str, p: np.ndarray, threshold: float = 0.5, seconds: float = 0.0,
                    res=res, test=test, y=y, tag=f"{method} run {r}") -> None:
                res[name] = score(y[test], p[test], threshold)
                res[name]["seconds"] = seconds
                _show_short(log, f"{tag} {name}", res[name])

            add("(a) detector alone", np.ones(y.size))
            add("(b) peak-SNR cut on seeds", snr, snr_threshold(snr, seeds))
            t0 = time.perf_counter()
            add("(c) gradient boosting on catalogue", gbm_baseline(feats, seeds, r),
                seconds=time.perf_counter() - t0)
            config = TrainConfig(epochs=epochs, passes=passes, seed=r)
            if DEFAULT_CHECKPOINT.is_file() and r < paper_runs:
                t0 = time.perf_counter()
                res_d = train(paper_src, seeds, config,
                              model=load_initial_model("default", "cpu"))
                add("(d) paper network, fine-tuned", infer(res_d.model, paper_src)[0],
                    seconds=time.perf_counter() - t0)
            if p_f is not None:
                add(DEFAULT_ROW, p_f, seconds=f_seconds)
            if context_models:
                context_rows(add, ctx_probs, seeds, label, ctx_seconds, snr)
            if context_models and r < ft_runs:
                t0 = time.perf_counter()
                res_e = train(ctx_src, seeds,
                              TrainConfig(epochs=ft_epochs, passes=ft_passes, seed=r),
                              model=load_checkpoint(context_models[0])[0])
                p_e = infer(res_e.model, ctx_src)[0]
                add(f"(e) context model{label} fine-tuned by the paper's loop", p_e,
                    seconds=time.perf_counter() - t0)
            out.append({"method": method, **res})
    return out


def _show_short(log, name: str, m: dict[str, float]) -> None:
    log(f"  {name:<58} P {m['P']:.3f} R {m['R']:.3f} F1 {m['F1']:.3f} AUC {m['AUC']:.3f}"
        f" | best-t {m['F1_best_t']:.3f}" + (f" ({m['seconds']:.0f} s)" if m.get("seconds")
                                              else ""))


def morph_summary(runs: list[dict], log) -> dict:
    """Mean, min and max of F1 / P / R / AUC / best-t F1 per detector and method."""
    keys = ("F1", "P", "R", "AUC", "F1_best_t")
    summary: dict[str, dict[str, dict[str, list[float]]]] = {}
    for method in dict.fromkeys(r["method"] for r in runs):
        mine = [r for r in runs if r["method"] == method]
        log(f"\n{method}: mean (min-max) over {len(mine)} runs "
            f"({len({r['_info']['cube_seed'] for r in mine})} cubes), non-seed candidates")
        log("| method | runs | " + " | ".join(keys) + " |")
        log("|---" * (len(keys) + 2) + "|")
        summary[method] = {}
        names = dict.fromkeys(k for r in mine for k in r if k not in ("method", "_info"))
        for name in sorted(names):
            cells, entry = [str(sum(name in r for r in mine))], {}
            for k in keys:
                vals = np.array([r[name][k] for r in mine if name in r], float)
                entry[k] = [float(vals.mean()), float(vals.min()), float(vals.max())]
                cells.append(f"{vals.mean():.3f} ({vals.min():.3f}-{vals.max():.3f})")
            summary[method][name] = entry
            log(f"| {name} | " + " | ".join(cells) + " |")
    return summary


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
        t0 = time.perf_counter()
        v = verify(cube.data, det.mask, det.catalog, seeds, arch="paper",
                   config=TrainConfig(epochs=epochs), init=init, threshold="clusters")
        c = {"candidates": len(det.catalog), "seeds_clump": v.n_seeds["clump"],
             "seeds_not": v.n_seeds["not_clump"], "seconds": time.perf_counter() - t0}
        for name, t in (("p>=0.5", 0.5), ("clusters", v.threshold)):
            verdict = verdicts(v.p_clump, t, 0.1)
            c[name] = {k: int(np.sum(verdict == k)) for k in ("clump", "rejected",
                                                              "uncertain")}
            c[name]["threshold"] = float(t)
        out[method] = c
        log(f"L1448 {method}: {c['candidates']} candidates, seeds {c['seeds_clump']}+/"
            f"{c['seeds_not']}-, {c['seconds']:.0f} s")
        for name in ("p>=0.5", "clusters"):
            k = c[name]
            log(f"  {name:9s} (t {k['threshold']:.3f}): kept {k['clump']}, rejected "
                f"{k['rejected']}, uncertain {k['uncertain']}")
    return out


def l1448_agreement(epochs: int, log) -> dict[str, dict[str, float]]:
    """The demo on L1448 (ClumpFind, dendrogram cross-match seeds): verdict agreement.

    Every cross-matched candidate is a positive seed, so every candidate *not* used as a
    seed lacks a dendrogram counterpart: the cross-match calls it unconfirmed, and the
    share of those the verifier rejects is its agreement with the cross-match.  The
    paper's network (fine-tuned ``epochs`` epochs, as ``make demo``), the shipped context
    model applied without training, and the default verifier (the ensemble).
    """
    from glue_ssclump.core.cube import read_cube
    from glue_ssclump.core.pipeline import cross_match_seeds, detect, verify

    cube = read_cube(Path(__file__).resolve().parents[1] / "glue_ssclump" / "data"
                     / "l1448_13co.fits")
    det = detect(cube, "clumpfind", crossmatch_with="dendrogram")
    seeds = cross_match_seeds(det.catalog)
    ids = np.asarray(det.catalog["clump_id"])
    free = ~np.isin(ids, list(seeds))
    matched = np.asarray(det.catalog["n_detectors"]) >= 2
    out = {}
    for name, kw in (("paper, fine-tuned", {"config": TrainConfig(epochs=epochs),
                                            "arch": "paper"}),
                     ("context, no training", {"arch": "context", "train_model": False}),
                     ("ensemble (the default verifier)", {})):
        t0 = time.perf_counter()
        v = verify(cube.data, det.mask, det.catalog, seeds, **kw)
        clump = np.asarray(v.catalog["verdict"]) == "clump"
        agree = float(np.mean(clump[free] == matched[free]))
        out[name] = {"candidates": int(ids.size), "non_seed": int(free.sum()),
                     "agree": agree, "kept_non_seed": int(clump[free].sum()),
                     "rms": v.rms, "rms_source": v.rms_source,
                     "seconds": time.perf_counter() - t0}
        log(f"L1448 clumpfind, {name}: {ids.size} candidates, {int(free.sum())} not seeds "
            f"(all without a dendrogram match); verdicts agreeing with the cross-match "
            f"{agree:.3f} (kept {int(clump[free].sum())}); rms {v.rms:.4g} K from "
            f"{v.rms_source}; {out[name]['seconds']:.0f} s")
    return out


def _differ(a: dict[str, float], b: dict[str, float], tol: float = 5e-4) -> bool:
    """Two measurements of a row disagree (F1 or its ceiling); a re-run on another
    thread count may move a score by a few candidates' worth, not more."""
    return any(abs(a[k] - b[k]) > tol for k in ("F1", "F1_best_t"))


def snr_summary(paths, log) -> dict[str, dict[str, float]]:
    """Rows of several SNR-truth result files (the same runs, in the same order) against
    the preset's ceiling: per run the best truth-tuned F1 of any row, then the mean.  A
    row name measured differently by a later file (another shipped model) is kept twice,
    the later one suffixed with its file's name."""
    merged: list[dict] = []
    for path in paths:
        runs = json.loads(Path(path).read_text())["runs"]
        merged = merged or [{} for _ in runs]
        if len(runs) != len(merged):
            raise SystemExit(f"{path} has {len(runs)} runs, not {len(merged)}")
        for into, run in zip(merged, runs, strict=True):
            base = "(a) detector alone"
            if base in into and base in run and _differ(into[base], run[base]):
                raise SystemExit(f"{path}: row {base!r} differs from an earlier file: "
                                 "not the same cubes and seeds")
            for name, m in run.items():
                if name in into and _differ(into[name], m):  # (f) of another shipped model
                    name = f"{name} [{Path(path).stem}]"
                into[name] = m
    ceiling = np.array([max(m["F1_best_t"] for m in run.values()) for run in merged])
    log(f"ceiling (per run the best F1 best-t of any row): {ceiling.mean():.3f} "
        f"({ceiling.min():.3f}-{ceiling.max():.3f}) over {len(merged)} runs")
    log("| method | runs | F1 | own F1 best-t | gap to the ceiling (mean, largest run) |")
    log("|---|---|---|---|---|")
    out = {}
    for name in dict.fromkeys(k for run in merged for k in run):
        pos = [k for k, run in enumerate(merged) if name in run]
        f = np.array([merged[k][name]["F1"] for k in pos])
        own = np.array([merged[k][name]["F1_best_t"] for k in pos])
        gap = ceiling[pos] - f
        out[name] = {"F1": float(f.mean()), "gap": float(gap.mean()),
                     "gap_max": float(gap.max()), "ceiling": float(ceiling[pos].mean())}
        log(f"| {name} | {len(pos)} | {f.mean():.3f} ({f.min():.3f}-{f.max():.3f}) | "
            f"{own.mean():.3f} | {gap.mean():.3f} ({gap.max():.3f}) |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--shape", type=int, nargs=3, default=(64, 256, 256))
    ap.add_argument("--diffuse-peak", type=float, default=None,
                    help="peak of the synthetic diffuse cloud emission in rms (preset "
                         "'benchmark': 5.5; 10 makes bright cloud fragments that a "
                         "peak-SNR cut cannot tell from clumps)")
    ap.add_argument("--first-run", type=int, default=0,
                    help="index of the first run (cube seed 100 + index), to add runs to "
                         "an earlier result with --merge")
    ap.add_argument("--merge", nargs="+", default=(), type=Path,
                    help="JSON results of earlier runs with the same settings, summarised "
                         "together with the new runs")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--preset", default="benchmark",
                    choices=("benchmark", "morph", "morph_hard"),
                    help="'benchmark': SNR truth (the default); 'morph' / 'morph_hard': "
                         "morphology truth (core/synthetic_morph.py)")
    ap.add_argument("--cubes", type=int, default=3, help="morph presets: cubes (seed 100+k)")
    ap.add_argument("--first-cube", type=int, default=100, help="morph presets: first seed")
    ap.add_argument("--morph-epochs", type=int, default=2, help="(d): fine-tuning epochs")
    ap.add_argument("--morph-passes", type=int, default=2, help="(d): passes per epoch")
    ap.add_argument("--methods", nargs="+", default=("fellwalker", "clumpfind"))
    ap.add_argument("--context-models", nargs="*", type=Path, default=None,
                    help="pretrained arch='context' checkpoints: the first is (e0) and, on "
                         "the morph presets, is fine-tuned for (e); several are also "
                         "averaged (e1).  Default: the shipped one on the morph presets, "
                         "none on 'benchmark'")
    ap.add_argument("--ft-epochs", type=int, default=2, help="(e): fine-tuning epochs")
    ap.add_argument("--ft-passes", type=int, default=1, help="(e): passes per epoch")
    ap.add_argument("--ft-runs", type=int, default=99, help="(e) only in the first N runs")
    ap.add_argument("--paper-runs", type=int, default=99,
                    help="(d) only in the first N runs ('benchmark': (b), (d) and (e))")
    ap.add_argument("--context-label", default="",
                    help="appended to the context rows' names (e.g. ' v1')")
    ap.add_argument("--summarise", nargs="+", type=Path, default=(),
                    help="morph presets: only merge these JSON results (e.g. the baselines "
                         "and the context runs, made by separate processes on the same "
                         "cubes and seeds) and print the table")
    ap.add_argument("--snr-summary", nargs="+", type=Path, default=(),
                    help="SNR-truth presets: merge these JSON results (same cubes and "
                         "seeds, run by run) and print each row's F1 and its gap to the "
                         "preset's ceiling (per run the best 'F1 best-t' of any row)")
    ap.add_argument("--l1448-agreement", action="store_true",
                    help="only the L1448 demo's agreement with the dendrogram cross-match")
    args = ap.parse_args()
    if args.l1448_agreement:
        res = l1448_agreement(3, print)
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=1))
        return
    if args.snr_summary:
        snr_summary(args.snr_summary, print)
        return
    if args.summarise:
        merged: dict[tuple, dict] = {}
        for path in args.summarise:
            for run in json.loads(path.read_text())["runs"]:
                key = (run["method"], run["_info"]["cube_seed"], run["_info"]["run"])
                merged.setdefault(key, {}).update(run)
        summary = morph_summary(list(merged.values()), print)
        if args.json:
            Path(args.json).write_text(json.dumps({"merged_from": [str(p) for p in
                                                                   args.summarise],
                                                   "summary": summary}, indent=1))
        return
    if args.preset != "benchmark":
        if args.context_models is None:
            args.context_models = [p for p in (DEFAULT_CHECKPOINT.with_name(
                "ss3dclump_context.pt"),) if p.is_file()]
        morph_main(args)
        return
    settings = {"epochs": args.epochs, "passes": args.passes, "shape": list(args.shape),
                "diffuse_peak": args.diffuse_peak}
    if args.context_models:  # not in older files' settings, so only when used
        settings.update(context_models=[str(p) for p in args.context_models],
                        context_label=args.context_label)
    if args.paper_runs < args.runs:
        settings["paper_runs"] = args.paper_runs
    runs = []
    for path in args.merge:
        old = json.loads(path.read_text())
        if old.get("settings", settings) != settings:
            raise SystemExit(f"{path} was run with {old['settings']}, not {settings}")
        runs += old["runs"]
    runs += [one_run(r, tuple(args.shape), args.epochs, args.passes, print,
                     args.diffuse_peak, args.context_models or (), args.context_label,
                     paper=r - args.first_run < args.paper_runs)
             for r in range(args.first_run, args.first_run + args.runs)]
    keys = ("P", "R", "F1", "Acc", "AUC", "F1_best_t", "F1_unamb", "rho_ambiguous")
    print(f"\nmean (min-max) over {len(runs)} runs, scored on the non-seed candidates:")
    print("| method | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    summary = {}
    for name in runs[0]:
        summary[name] = {}
        cells = []
        for k in keys:
            vals = np.array([r[name][k] for r in runs if k in r.get(name, {})], float)
            if vals.size == 0 or not np.isfinite(vals).all():
                cells.append("-")
                continue
            summary[name][k] = [float(vals.mean()), float(vals.min()), float(vals.max())]
            cells.append(f"{vals.mean():.3f} ({vals.min():.3f}-{vals.max():.3f})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    real = {} if args.skip_real else real_cube(args.epochs, print)
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": settings, "runs": runs,
                                               "summary": summary, "l1448": real}, indent=1))


def morph_main(args: argparse.Namespace) -> None:
    """The morphology-truth benchmark (see the module docstring)."""
    def log(msg: str) -> None:
        print(msg, flush=True)

    settings = {"preset": args.preset, "cubes": args.cubes, "first_cube": args.first_cube,
                "runs": args.runs, "epochs": args.morph_epochs, "passes": args.morph_passes,
                "methods": list(args.methods), "ft_epochs": args.ft_epochs,
                "ft_passes": args.ft_passes, "ft_runs": args.ft_runs,
                "paper_runs": args.paper_runs, "context_label": args.context_label,
                "context_models": [str(p) for p in args.context_models]}
    log(f"settings: {settings}")
    runs = []
    for k in range(args.cubes):
        runs += morph_cube(args.preset, args.first_cube + k, args.runs, args.morph_epochs,
                           args.morph_passes, log, tuple(args.methods),
                           tuple(args.context_models), args.ft_epochs, args.ft_passes,
                           args.ft_runs, args.paper_runs, args.context_label)
        if args.json:  # partial results survive an interrupted run
            Path(args.json).write_text(json.dumps({"settings": settings, "runs": runs},
                                                  indent=1))
    summary = morph_summary(runs, log)
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": settings, "runs": runs,
                                               "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
