"""``ssclump galaxy``: clumps in galaxy images with Faster R-CNN (Popp et al.).

Subcommands ``synth``, ``train``, ``detect``, ``eval``; science core only
(:mod:`glue_ssclump.core.galaxy`).  ``glue_ssclump.cli.build_parser`` calls
:func:`add_parser`; bad input raises an :class:`~glue_ssclump.core.errors.SSClumpError`
subclass, which the ``ssclump`` entry point prints on one line with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

__all__ = ["add_parser", "run_synth", "run_train", "run_detect", "run_eval"]


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(int(n))


# --- synth ----------------------------------------------------------------------------
def run_synth(out: str | Path, n: int, seed: int = 0, size: int = 200, png: bool = True,
              host: str | None = None) -> list[Path]:
    """Write ``n`` synthetic galaxies into ``out``: ``galaxy_NNNN.fits`` (g, r, i cube),
    ``galaxy_NNNN_truth.ecsv`` and (``png``) ``galaxy_NNNN.png`` (the Lupton RGB).
    ``host``: 'smooth', 'structured' or 'mixed' (:func:`~.core.galaxy.synth_galaxy`;
    default the shipped model's, ``TRAIN_HOSTS``)."""
    from PIL import Image

    from .core.atomic import write_atomic
    from .core.galaxy import TRAIN_HOSTS, synth_galaxies, write_gri_fits

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for k, (image, truth) in enumerate(synth_galaxies(n, seed=seed, size=size,
                                                             host=host or TRAIN_HOSTS)):
        stem = out / f"galaxy_{k:04d}"
        written.append(write_gri_fits(stem.with_suffix(".fits"), image))
        written.append(write_atomic(f"{stem}_truth.ecsv",
                                    lambda tmp, t=truth: t.write(tmp, format="ascii.ecsv",
                                                                 overwrite=True)))
        if png:
            written.append(write_atomic(stem.with_suffix(".png"),
                                        lambda tmp, im=image: Image.fromarray(im.rgb).save(
                                            tmp, format="PNG")))
    return written


def cmd_synth(args: argparse.Namespace) -> int:
    paths = run_synth(args.out, args.n, args.seed, args.size, png=not args.no_png,
                      host=args.hosts)
    print(f"wrote {len(paths)} files into {args.out}")
    return 0


def _add_hosts(p: argparse.ArgumentParser) -> None:
    from .core.galaxy import HOSTS, TRAIN_HOSTS

    p.add_argument("--hosts", default=TRAIN_HOSTS, choices=HOSTS,
                   help="synthetic host galaxies: smooth Sersic discs, structured (arms, "
                        "texture, bars, dust lanes) or mixed 50/50 (default "
                        f"{TRAIN_HOSTS}, the shipped model's)")


# --- train ----------------------------------------------------------------------------
#: The recipe of the shipped model (``ssclump galaxy train --default``).
DEFAULT_RECIPE = {"n_train": 3000, "seed": 0, "epochs": 6, "stop_after": None,
                  "batch_size": 4, "lr": 1e-3, "crop": 128}


def run_train(out: str | Path, *, n_train: int, seed: int, epochs: int, batch_size: int,
              lr: float, crop: int | None, arch: str, hosts: str | None = None,
              device: str = "auto", quiet: bool = False, init: str | None = None,
              stop_after: int | None = None) -> Path:
    """Train a detector on synthetic galaxies (``hosts``: default the shipped model's) and
    save it (float16 weights) to ``out``, after every epoch and at the end."""
    from .core.galaxy import (
        TRAIN_HOSTS,
        load_galaxy_checkpoint,
        save_galaxy_checkpoint,
        train_detector,
    )
    from .core.progress import tqdm_progress

    def on_epoch(entry: dict) -> None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        entry["loadavg_1min"] = round(load, 2)
        print(f"epoch {entry['epoch']}: loss {entry['loss']:.4f} "
              f"(cls {entry['loss_classifier']:.4f}, box {entry['loss_box_reg']:.4f}, "
              f"obj {entry['loss_objectness']:.4f}, rpn {entry['loss_rpn_box_reg']:.4f}) "
              f"{entry['seconds']:.0f} s, load {load:.2f}", flush=True)

    start_model = load_galaxy_checkpoint(init, device=device) if init else None
    t0 = time.perf_counter()
    with tqdm_progress("galaxy train", disable=quiet or None) as progress:
        model, history = train_detector(
            n_train=n_train, seed=seed, hosts=hosts or TRAIN_HOSTS, epochs=epochs,
            batch_size=batch_size, lr=lr, crop=crop, arch=arch, init=start_model,
            device=device, progress=progress, on_epoch=on_epoch, checkpoint=out,
            stop_after=stop_after)
    wall = time.perf_counter() - t0
    model.metadata["training"]["wall_seconds"] = round(wall, 1)
    path = save_galaxy_checkpoint(out, model)
    print(f"trained in {wall / 60:.1f} min; wrote {path} "
          f"({path.stat().st_size / 2**20:.1f} MiB)")
    return path


def cmd_train(args: argparse.Namespace) -> int:
    from .core.galaxy import DEFAULT_MODEL_PATH

    _threads(args.threads)
    recipe = dict(DEFAULT_RECIPE, hosts=args.hosts)  # --hosts defaults to TRAIN_HOSTS
    for key in recipe:
        value = getattr(args, key)
        if value is not None:
            recipe[key] = value
    if args.default:
        out = args.out or DEFAULT_MODEL_PATH
    elif args.out:
        out = args.out
    else:
        from .core.galaxy import GalaxyError

        raise GalaxyError("give --out PATH for the checkpoint (or --default to rebuild the "
                          "shipped model)")
    run_train(out, arch=args.arch, device=args.device, quiet=args.quiet, init=args.init,
              **recipe)
    return 0


# --- detect ---------------------------------------------------------------------------
def write_overlay(path: str | Path, image, table, title: str | None = None) -> Path:
    """PNG of the image's RGB (row 0 at the top, as stored) with the candidates' boxes:
    'clump' green and 'odd' orange (the colours of glue's verdict groups), labelled with
    clump_id and score."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from .core.atomic import write_atomic
    from .core.labels import LABEL_CLUMP, LABEL_COLOURS, LABEL_UNCERTAIN

    ny, nx = image.shape
    fig = Figure(figsize=(6, 6 * ny / nx))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(image.rgb, origin="upper", interpolation="nearest")
    for row in table:
        colour = LABEL_COLOURS[LABEL_UNCERTAIN if str(row["class"]) == "odd" else LABEL_CLUMP]
        ax.add_patch(Rectangle((row["x_min"], row["y_min"]), row["x_max"] - row["x_min"],
                               row["y_max"] - row["y_min"], fill=False, lw=1.2, ec=colour))
        ax.text(row["x_max"], row["y_min"], f"{row['clump_id']}:{row['score']:.2f}",
                color=colour, fontsize=7, va="bottom")
    if title:
        ax.text(2, 2, title, color="white", fontsize=8, va="top")
    ax.set_axis_off()
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(ny - 0.5, -0.5)
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def run_detect(images: list[str], out: str | Path, model: str | None = None,
               score_min: float = 0.3, psf_fwhm: float | None = None, device: str = "auto",
               quiet: bool = False):
    """Detect clumps in one galaxy image (1 or 3 files); write ``OUT/clumps.ecsv``,
    ``OUT/clumps.fits`` and ``OUT/overlay.png``.  Returns the catalogue."""
    from .core.atomic import write_atomic
    from .core.galaxy import detect_clumps, read_galaxy_image
    from .core.progress import tqdm_progress

    image = read_galaxy_image(images[0] if len(images) == 1 else images, psf_fwhm_pix=psf_fwhm)
    with tqdm_progress("galaxy detect", disable=quiet or None) as progress:
        table = detect_clumps(image, model=model, score_min=score_min, progress=progress,
                              device=device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "clumps.ecsv",
                 lambda tmp: table.write(tmp, format="ascii.ecsv", overwrite=True))
    plain = table.copy(copy_data=True)
    # FITS keywords: 8 characters, plain values
    model_meta = table.meta.get("model", {})
    plain.meta = {"PSF_FWHM": table.meta["psf_fwhm_pix"], "SCOREMIN": float(score_min),
                  "NMS_IOU": table.meta.get("nms_iou"), "METHOD": table.meta.get("method"),
                  "MODEL": f"{model_meta.get('arch', '')} {model_meta.get('path', '')}"[:68],
                  "COMMENT": "x, y: 0-based numpy column, row (row 0 = first FITS row)"}
    write_atomic(out / "clumps.fits", lambda tmp: plain.write(tmp, format="fits",
                                                             overwrite=True))
    write_overlay(out / "overlay.png", image, table,
                  f"{len(table)} candidates, score >= {score_min:g}")
    return table


def cmd_detect(args: argparse.Namespace) -> int:
    table = run_detect(args.images, args.out, args.model, args.score_min, args.psf_fwhm,
                       args.device, args.quiet)
    n_odd = int((table["class"] == "odd").sum()) if len(table) else 0
    print(f"{len(table)} candidates ({len(table) - n_odd} clump, {n_odd} odd) at score >= "
          f"{args.score_min:g}; wrote {Path(args.out) / 'clumps.ecsv'}, clumps.fits, "
          "overlay.png")
    return 0


# --- eval -----------------------------------------------------------------------------
def _read_synth_dir(folder: Path):
    from astropy.table import Table

    from .core.galaxy import GalaxyError, read_galaxy_image

    fits_files = sorted(folder.glob("galaxy_*.fits"))
    if not fits_files:
        raise GalaxyError(f"{folder} holds no galaxy_*.fits; write some with "
                          "`ssclump galaxy synth DIR`")
    images, truths = [], []
    for f in fits_files:
        truth_path = f.with_name(f.stem + "_truth.ecsv")
        if not truth_path.exists():
            raise GalaxyError(f"{truth_path} is missing: every galaxy_NNNN.fits needs its "
                              "truth table")
        images.append(read_galaxy_image(f))
        truths.append(Table.read(truth_path, format="ascii.ecsv"))
    return images, truths


def run_eval(out: str | Path, folder: str | None = None, n: int = 50, seed: int = 1000,
             model: str | None = None, baseline: bool = True, score_min: float = 0.3,
             device: str = "auto", quiet: bool = False, hosts: str | None = None) -> dict:
    """Score the detector (and the classical baseline) on synthetic galaxies with truth;
    write ``OUT/evaluation.json`` and ``OUT/evaluation.png``."""
    from .core.atomic import write_atomic
    from .core.galaxy import TRAIN_HOSTS, evaluate, plot_evaluation, synth_galaxies
    from .core.progress import tqdm_progress

    if folder:
        images, truths = _read_synth_dir(Path(folder))
    else:
        hosts = hosts or TRAIN_HOSTS
        pairs = list(synth_galaxies(n, seed=seed, host=hosts))
        images, truths = [p[0] for p in pairs], [p[1] for p in pairs]
    results = []
    with tqdm_progress("galaxy eval", disable=quiet or None) as progress:
        span = progress.span(0.0, 0.5 if baseline else 1.0)
        results.append(evaluate(images, truths, model, method="frcnn", score_min=score_min,
                                progress=span, device=device))
        if baseline:
            results.append(evaluate(images, truths, method="baseline", score_min=score_min,
                                    progress=progress.span(0.5, 1.0)))
    report = {"source": folder or f"synth_galaxies(n={n}, seed={seed}, host={hosts!r})",
              "model": str(model or "default"),
              "results": [r.as_dict() for r in results]}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "evaluation.json",
                 lambda tmp: tmp.write_text(json.dumps(report, indent=1, default=float)))
    plot_evaluation(results, out / "evaluation.png")
    return report


def _fmt(c: dict) -> str:
    return (f"completeness {c['completeness']:.3f} purity {c['purity']:.3f} F1 {c['f1']:.3f} "
            f"({c['n_found']}/{c['n_truth']} truths, {c['n_tp']}/{c['n_det']} detections)")


def cmd_eval(args: argparse.Namespace) -> int:
    report = run_eval(args.out, args.dir, args.n, args.seed, args.model, not args.no_baseline,
                      args.score_min, args.device, args.quiet, hosts=args.hosts)
    for res in report["results"]:
        s = res["summary"]
        print(f"{res['method']}: score >= {s['score_min']}: {_fmt(s['all'])}")
        for key in (k for k in s if k.startswith("flux_ge_")):
            print(f"  flux ratio >= {key[8:]}: {_fmt(s[key])}")
    print(f"wrote {Path(args.out) / 'evaluation.json'} and evaluation.png")
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``galaxy`` (with ``synth``, ``train``, ``detect``, ``eval``) to ``ssclump``."""
    from .core.galaxy import ARCHS, DEFAULT_ARCH, TRAIN_HOSTS

    g = subparsers.add_parser(
        "galaxy",
        help="clumps in galaxy images with Faster R-CNN (Popp et al., Galaxy Zoo: Clump Scout)",
        description="Detect giant star-forming clumps in g, r, i galaxy images with a "
        "torchvision Faster R-CNN (Popp et al.), train it on synthetic galaxies, evaluate it.",
    )
    gsub = g.add_subparsers(dest="galaxy_command", metavar="SUBCOMMAND")
    g.set_defaults(func=lambda a: (g.print_help(), 1)[1])

    p = gsub.add_parser("synth", help="write synthetic clumpy galaxies with truth tables")
    p.add_argument("out", help="output folder")
    p.add_argument("--n", type=int, default=10, help="number of galaxies (default 10)")
    p.add_argument("--seed", type=int, default=1000,
                   help="random seed (default 1000; the default model trained on seed 0)")
    p.add_argument("--size", type=int, default=200, help="image side in px (default 200)")
    p.add_argument("--no-png", action="store_true", help="FITS and truth only")
    _add_hosts(p)
    p.set_defaults(func=cmd_synth)

    p = gsub.add_parser(
        "train", help="train a detector on synthetic galaxies",
        description="Train a Faster R-CNN clump detector from scratch on synthetic galaxies. "
        "--default rebuilds the shipped model (glue_ssclump/data/galaxy_default.pt) with "
        f"the recipe {DEFAULT_RECIPE} on {TRAIN_HOSTS} hosts.")
    p.add_argument("--default", action="store_true", help="the shipped model's recipe and path")
    p.add_argument("--out", default=None, help="checkpoint path (.pt)")
    p.add_argument("--arch", default=DEFAULT_ARCH, choices=ARCHS,
                   help=f"detector (default {DEFAULT_ARCH}; resnet50_fpn is the paper's)")
    p.add_argument("--n-train", dest="n_train", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", dest="batch_size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--crop", type=int, default=None, help="training crop side in px")
    p.add_argument("--stop-after", dest="stop_after", type=int, default=None,
                   help="run only the first N epochs of the --epochs learning-rate schedule")
    p.add_argument("--init", default=None, help="fine-tune this checkpoint")
    _add_hosts(p)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = gsub.add_parser(
        "detect", help="find clumps in one galaxy image",
        description="Detect clumps in a galaxy image: three FITS files g r i, one FITS cube "
        "with planes g, r, i (WCS kept: RA/Dec columns), or an RGB PNG / JPEG (no flux "
        "ratios). Writes OUT/clumps.ecsv, OUT/clumps.fits and OUT/overlay.png. Pixel y is "
        "the numpy row as stored (row 0 = first FITS row = top PNG row).")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="g r i FITS, a 3-plane FITS "
                   "or a PNG / JPEG")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    p.add_argument("--score-min", dest="score_min", type=float, default=0.3,
                   help="detection score threshold (default 0.3, the paper's)")
    p.add_argument("--psf-fwhm", dest="psf_fwhm", type=float, default=None,
                   help="r-band PSF FWHM in pixels (default: header PSF_FWHM, else 5.6)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_detect)

    p = gsub.add_parser(
        "eval", help="completeness / purity on synthetic galaxies (with the baseline)",
        description="Score the detector and the classical baseline (DAOStarFinder on the "
        "residual of a median-filtered galaxy) the paper's way: centroids within 0.75 FWHM, "
        "per score threshold and flux ratio. Writes OUT/evaluation.json and evaluation.png.")
    p.add_argument("dir", nargs="?", default=None,
                   help="folder of `ssclump galaxy synth` output (default: make --n galaxies)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--n", type=int, default=50, help="galaxies to make (default 50)")
    p.add_argument("--seed", type=int, default=1000, help="seed (default 1000, never trained)")
    p.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    p.add_argument("--score-min", dest="score_min", type=float, default=0.3)
    p.add_argument("--no-baseline", action="store_true", help="skip the classical baseline")
    _add_hosts(p)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval)
    return g
