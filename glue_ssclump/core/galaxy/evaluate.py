"""The paper's detection metrics (Popp et al., section 4.4 and appendices D, F).

A detection matches a truth source when their centroids are closer than 0.75 PSF FWHM
(one-to-one, highest score first).  Completeness = matched truths / truths, purity =
matched detections / detections, per score threshold (0.0-0.9) and per clump-to-galaxy
flux ratio (cuts at 3 % and 8 %, 0.5 dex bins).  Class-aware by default: for 'clump', a
'clump' detection on a star is a false positive and a clump found only as 'odd' is
missed; ``klass="any"`` ignores classes.  Completeness in a flux range uses the truth's
flux ratio, purity the detection's measured one (what a catalogue user cuts on).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from astropy.table import Table

from ..progress import Progress, ensure_progress
from .detect import (
    SCORE_MIN,
    baseline_raw,
    catalogue,
    postprocess,
    raw_predictions,
    resolve_model,
)
from .image import GalaxyImage
from .model import GalaxyModel
from .postprocess import host_mask

__all__ = ["match", "count", "evaluate", "plot_evaluation", "average_precision",
           "GalaxyEvaluation", "MATCH_FWHM", "THRESHOLDS", "FLUX_CUTS", "FLUX_BIN_EDGES"]

MATCH_FWHM = 0.75
THRESHOLDS = tuple(round(0.1 * k, 1) for k in range(10))
FLUX_CUTS = (0.03, 0.08)
#: 0.5 dex bins of the flux ratio, 0.3 % to 31.6 %
FLUX_BIN_EDGES = tuple(10.0 ** np.arange(-2.5, -0.49, 0.5))


def match(det_x: np.ndarray, det_y: np.ndarray, det_score: np.ndarray, truth_x: np.ndarray,
          truth_y: np.ndarray, radius: float) -> np.ndarray:
    """One-to-one centroid matching, highest score first.

    Returns
    -------
    ndarray of int
        For each detection, the index of its truth source, or -1.
    """
    det_x, det_y = np.asarray(det_x, float).ravel(), np.asarray(det_y, float).ravel()
    truth_x, truth_y = np.asarray(truth_x, float).ravel(), np.asarray(truth_y, float).ravel()
    out = np.full(det_x.size, -1, dtype=np.int64)
    if det_x.size == 0 or truth_x.size == 0:
        return out
    free = np.ones(truth_x.size, dtype=bool)
    for i in np.argsort(-np.asarray(det_score, float).ravel(), kind="stable"):
        d = np.hypot(truth_x - det_x[i], truth_y - det_y[i])
        d[~free] = np.inf
        j = int(np.argmin(d))
        if d[j] < radius:
            out[i] = j
            free[j] = False
    return out


def _class_of(table: Table) -> np.ndarray:
    if "class" in table.colnames:
        return np.asarray(table["class"]).astype(str)
    return np.full(len(table), "clump")


def count(dets: Sequence[Table], truths: Sequence[Table], fwhms: Sequence[float], *,
          klass: str = "clump", score_min: float = 0.0, flux_min: float | None = None,
          flux_max: float | None = None) -> dict:
    """Completeness and purity over a set of images.

    Parameters
    ----------
    dets, truths : sequences of Table
        Per image: detections (``x``, ``y``, ``score``, ``class``, ``flux_ratio``) and
        truth (``x``, ``y``, ``class``, ``flux_ratio``).
    fwhms : sequence of float
        Per image PSF FWHM (pix); the match radius is 0.75 of it.
    klass : str
        'clump', 'odd' or 'any'.
    score_min : float
        Detections below are ignored.
    flux_min, flux_max : float, optional
        Flux ratio range: truths by their true ratio, detections by their measured one.

    Returns
    -------
    dict
        ``n_truth``, ``n_found``, ``n_det``, ``n_tp``, ``completeness``, ``purity``,
        ``f1`` (NaN where undefined).
    """
    n_truth = n_found = n_det = n_tp = 0
    lo = -np.inf if flux_min is None else flux_min
    hi = np.inf if flux_max is None else flux_max
    for det, truth, fwhm in zip(dets, truths, fwhms, strict=True):
        score = np.asarray(det["score"], float) if len(det) else np.zeros(0)
        keep = score >= score_min
        d = det[keep] if len(det) else det
        idx = match(d["x"] if len(d) else [], d["y"] if len(d) else [],
                    score[keep] if len(det) else [], truth["x"] if len(truth) else [],
                    truth["y"] if len(truth) else [], MATCH_FWHM * float(fwhm))
        dcls, tcls = _class_of(d), _class_of(truth)
        t_ratio = np.asarray(truth["flux_ratio"], float) if len(truth) else np.zeros(0)
        d_ratio = (np.asarray(d["flux_ratio"], float) if len(d) and "flux_ratio" in d.colnames
                   else np.full(len(d), np.nan))
        t_sel = (tcls == klass) if klass != "any" else np.ones(len(truth), bool)
        t_sel &= (t_ratio >= lo) & (t_ratio < hi)
        d_sel = (dcls == klass) if klass != "any" else np.ones(len(d), bool)
        if flux_min is not None or flux_max is not None:
            d_sel &= (d_ratio >= lo) & (d_ratio < hi)
        ok = idx >= 0
        same = np.zeros(len(d), bool)
        same[ok] = (dcls[ok] == tcls[idx[ok]]) if klass != "any" else True
        n_truth += int(t_sel.sum())
        n_det += int(d_sel.sum())
        n_tp += int((d_sel & ok & same).sum())
        found = np.zeros(len(truth), bool)
        found[idx[ok & same]] = True
        n_found += int((t_sel & found).sum())
    comp = n_found / n_truth if n_truth else float("nan")
    pur = n_tp / n_det if n_det else float("nan")
    f1 = 2 * comp * pur / (comp + pur) if n_truth and n_det and comp + pur > 0 else float("nan")
    return {"n_truth": n_truth, "n_found": n_found, "n_det": n_det, "n_tp": n_tp,
            "completeness": comp, "purity": pur, "f1": f1}


def average_precision(curve: Sequence[dict]) -> float:
    """The paper's AP (eq. D3) from a completeness / purity curve over score thresholds:
    sum of (r_n - r_{n-1}) p_n with recall increasing (thresholds decreasing)."""
    pts = sorted((c["completeness"], c["purity"]) for c in curve
                 if np.isfinite(c["completeness"]) and np.isfinite(c["purity"]))
    ap, prev = 0.0, 0.0
    for r, p in pts:
        ap += (r - prev) * p
        prev = r
    return ap


@dataclass
class GalaxyEvaluation:
    """Result of :func:`evaluate` for one method."""

    method: str
    summary: dict
    curve: list[dict]
    bins: list[dict]
    detections: list[Table] = field(repr=False, default_factory=list)

    def as_dict(self) -> dict:
        return {"method": self.method, "summary": self.summary, "curve": self.curve,
                "bins": self.bins}


def evaluate(images: Sequence[GalaxyImage], truths: Sequence[Table],
             model: GalaxyModel | str | os.PathLike | None = None, *, method: str = "frcnn",
             score_min: float = SCORE_MIN, thresholds: Sequence[float] = THRESHOLDS,
             flux_cuts: Sequence[float] = FLUX_CUTS, klass: str = "clump",
             progress: Progress | None = None, device: str | torch.device = "cpu",
             baseline_options: dict | None = None) -> GalaxyEvaluation:
    """Run a method on galaxies with truth and score it the paper's way.

    Parameters
    ----------
    images, truths : sequences
        Galaxies and their truth tables (e.g. from :func:`~.synth.synth_galaxies`).
    model : GalaxyModel, path or None
        Detector for ``method="frcnn"`` (None: the shipped default).
    method : str
        ``"frcnn"`` or ``"baseline"`` (:func:`~.detect.baseline_raw`).
    score_min : float
        Operating threshold for the flux-ratio cuts and bins (0.3).
    thresholds : sequence of float
        Score thresholds of the completeness / purity curve; the post-processing is run
        again at each one (merging depends on which candidates pass).
    flux_cuts : sequence of float
        Flux-ratio cuts (>=) reported at ``score_min``.
    klass : str
        Class scored ('clump', 'odd' or 'any').
    progress : Progress, optional
        Per image; cancellable.
    device : str
        Torch device for the detector.
    baseline_options : dict, optional
        Keyword settings of :func:`~.detect.baseline_raw` for ``method="baseline"``.

    Returns
    -------
    GalaxyEvaluation
        ``summary``: at ``score_min``, all fluxes and per cut (``flux_ge_0.03``, ...), plus
        the AP of the curve and seconds per image; ``curve``: per threshold;
        ``bins``: per 0.5 dex flux bin; ``detections``: the catalogues at ``score_min``.
    """
    import time

    progress = ensure_progress(progress)
    gm = resolve_model(model, device) if method == "frcnn" else None
    per_thr: dict[float, list[Table]] = {float(t): [] for t in thresholds}
    at_min: list[Table] = []
    fwhms = [float(im.psf_fwhm_pix) for im in images]
    seconds = 0.0
    for k, image in enumerate(images):
        t0 = time.perf_counter()
        raw = (raw_predictions(gm, image) if gm is not None
               else baseline_raw(image, **(baseline_options or {})))
        host = host_mask(image)
        cat = catalogue(postprocess(raw, image, score_min, host=host), image, host,
                        {"method": method})
        seconds += time.perf_counter() - t0
        at_min.append(cat)
        for t in per_thr:
            c = postprocess(raw, image, t, host=host)
            per_thr[t].append(Table({"x": c.x, "y": c.y, "score": c.scores,
                                     "class": np.array([{2: "odd"}.get(int(v), "clump")
                                                        for v in c.labels], dtype="U5")}))
        progress.update((k + 1) / len(images), f"{method}: galaxy {k + 1}/{len(images)}")
    curve = []
    for t, dets in per_thr.items():
        curve.append({"threshold": t, **count(dets, truths, fwhms, klass=klass)})
    summary = {"score_min": score_min, "klass": klass, "n_images": len(images),
               "all": count(at_min, truths, fwhms, klass=klass),
               "any_class": count(at_min, truths, fwhms, klass="any"),
               "ap": average_precision(curve),
               "seconds_per_image": seconds / max(len(images), 1)}
    for cut in flux_cuts:
        summary[f"flux_ge_{cut:g}"] = count(at_min, truths, fwhms, klass=klass, flux_min=cut)
    bins = []
    edges = FLUX_BIN_EDGES
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        bins.append({"lo": lo, "hi": hi,
                     **count(at_min, truths, fwhms, klass=klass, flux_min=lo, flux_max=hi)})
    return GalaxyEvaluation(method, summary, curve, bins, at_min)


def plot_evaluation(results: Sequence[GalaxyEvaluation], path: str | os.PathLike) -> Path:
    """One PNG, three panels: purity vs completeness over score thresholds (paper figure
    8), completeness and purity per flux-ratio bin (figures 10, 11, F1), 3 % and 8 %
    marked.  Matplotlib's Agg canvas: no display needed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..atomic import write_atomic

    fig = Figure(figsize=(13, 4.2))
    FigureCanvasAgg(fig)
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for res in results:
        c = np.array([r["completeness"] for r in res.curve])
        p = np.array([r["purity"] for r in res.curve])
        line, = ax1.plot(c, p, "o-", label=res.method)
        for r in res.curve:
            ax1.annotate(f"{r['threshold']:.1f}", (r["completeness"], r["purity"]),
                         fontsize=6, color=line.get_color())
        mid = np.sqrt(np.array([b["lo"] for b in res.bins]) * np.array([b["hi"] for b in
                                                                          res.bins]))
        ax2.plot(mid, [b["completeness"] for b in res.bins], "o-", label=res.method)
        ax3.plot(mid, [b["purity"] for b in res.bins], "o-", label=res.method)
    ax1.set(xlabel="completeness", ylabel="purity", title="score threshold 0.0-0.9",
            xlim=(0, 1.02), ylim=(0, 1.02))
    for ax, what in ((ax2, "completeness"), (ax3, "purity")):
        ax.set_xscale("log")
        for cut in FLUX_CUTS:
            ax.axvline(cut, ls="--", color="0.5", lw=0.8)
        ax.set(xlabel="clump / galaxy flux ratio (r)", ylabel=what, ylim=(0, 1.02),
               title=f"{what} per 0.5 dex bin, score >= {results[0].summary['score_min']}")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
