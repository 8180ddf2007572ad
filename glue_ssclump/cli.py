"""The ``ssclump`` command: detection, synthetic cubes and SS-3D-Clump verification.

Every subcommand uses the science core only (no glue, no Qt), shows a progress bar on
long work, and exits non-zero with a one-line message naming the problem and the fix
on bad input.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from .core.errors import SSClumpError
from .core.labels import DEFAULT_BAND, DEFAULT_THRESHOLD
from .core.train_config import ARCH_NAMES
from .version import __version__

DEFAULT_CUBE = Path(__file__).parent / "data" / "l1448_13co.fits"

EPILOG_DETECT = textwrap.dedent(
    """\
    Levels (Tlow, DeltaT, Noise, MinDip, min_value, ...) are K when a plain number and
    multiples of the rms with an 'rms' suffix:  --param Tlow=3rms --param DeltaT=0.3.
    Defaults are the paper's settings (Luo et al. 2024) in rms units; list them with
    `ssclump detectors`.

    Example, on the bundled L1448 13CO cube:
      ssclump detect %(cube)s --method clumpfind --out out/l1448_cf
    """
)


class UserError(SSClumpError):
    """A problem with the user's input: printed without a traceback, exit code 2."""


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types whose message is enough for the user (no traceback).

    Readers raise SSClumpError subclasses for every bad input; the OS errors stay for
    paths the subcommands touch directly (an output folder that is a file, a full disk).
    """
    return (SSClumpError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
            PermissionError, FileExistsError)


# --- detect ---------------------------------------------------------------------------
def run_detect(
    cube_path: str | Path,
    method: str,
    out_dir: str | Path,
    rms: float | None = None,
    params: dict[str, str] | None = None,
    crossmatch_with: str | None = None,
    quiet: bool = False,
):
    """Detect candidates and write ``catalog.fits`` and ``mask.fits`` into ``out_dir``.

    Returns
    -------
    glue_ssclump.core.pipeline.Detection
    """
    from .core.cube import read_cube
    from .core.pipeline import detect
    from .core.progress import tqdm_progress

    cube = read_cube(cube_path)
    with tqdm_progress(f"detect ({method})", disable=quiet or None) as progress:
        det = detect(cube, method, rms, params, crossmatch_with=crossmatch_with,
                     progress=progress)
    write_detection(Path(out_dir), det)
    return det


def write_detection(out: Path, det) -> tuple[Path, Path]:
    """Write ``catalog.fits`` and ``mask.fits`` (int32, the cube's WCS) into ``out``."""
    import numpy as np

    from .core.atomic import atomic_path
    from .core.catalog import write_catalog

    out.mkdir(parents=True, exist_ok=True)
    cat_path, mask_path = out / "catalog.fits", out / "mask.fits"
    # Both files are written to temporaries first and renamed only when both are
    # complete: a failure leaves the previous catalogue + mask pair as it was.
    with atomic_path(cat_path) as cat_tmp, atomic_path(mask_path) as mask_tmp:
        write_catalog(det.catalog, cat_tmp)
        det.cube.to_hdu(np.asarray(det.mask, dtype=np.int32)).writeto(mask_tmp)
    return cat_path, mask_path


def _summary(det) -> str:
    import numpy as np

    cat = det.catalog
    n = len(cat)
    lines = [f"{det.result.detector}: {n} candidates at rms {det.result.rms:.4g} K"]
    if n:
        snr = np.asarray(cat["snr_peak"])
        lines.append(
            f"  peak SNR median {np.median(snr):.1f} (min {snr.min():.1f}, max {snr.max():.1f}); "
            f"{int(np.sum(cat['touches_edge']))} touch the cube edge or a blank"
        )
        if "n_detectors" in cat.colnames:
            other = cat.meta.get("crossmatch", {}).get("with", "the second detector")
            lines.append(f"  {int(np.sum(cat['n_detectors'] > 1))} also found by {other}")
    return "\n".join(lines)


def cmd_detect(args: argparse.Namespace) -> int:
    from .core.detectors import parse_param_assignments

    params = parse_param_assignments(args.param)
    det = run_detect(args.cube, args.method, args.out, args.rms, params, args.crossmatch,
                     args.quiet)
    print(_summary(det))
    print(f"wrote {Path(args.out) / 'catalog.fits'} and {Path(args.out) / 'mask.fits'}")
    return 0


def cmd_detectors(args: argparse.Namespace) -> int:
    from .core.detectors import available_detectors
    from .core.detectors.registry import PLUGIN_ERRORS

    for name, det in sorted(available_detectors().items()):
        print(f"{name}: {det.description}")
        for p in det.params:
            print(f"    {p.name:<10} default {p.default!s:<8} ({p.kind}) {p.doc}")
    for name, err in PLUGIN_ERRORS.items():
        print(f"{name}: failed to load ({err})")
    return 0


# --- synth ----------------------------------------------------------------------------
def cmd_synth(args: argparse.Namespace) -> int:
    from .core.synthetic import write_synthetic

    kwargs = {"seed": args.seed}
    if args.shape:
        kwargs["shape"] = tuple(args.shape)
    if args.n_clumps is not None:
        kwargs["n_clumps"] = args.n_clumps
    if args.rms is not None:
        kwargs["rms"] = args.rms
    if args.preset:
        kwargs["preset"] = args.preset
    try:
        paths = write_synthetic(args.out, **kwargs)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    for p in paths if isinstance(paths, (list, tuple)) else [paths]:
        print(f"wrote {p}")
    return 0


# --- verify ---------------------------------------------------------------------------
def format_epoch(rec) -> str:
    """One line per epoch for the terminal."""
    import math

    line = (f"epoch {rec.epoch:3d}  loss {rec.loss:.4f}  NMI(prev) {rec.nmi_prev:.3f}  "
            f"reassigned {rec.n_reassigned:5d}  selected {rec.n_selected:5d}  "
            f"{rec.seconds:.1f} s")
    if not math.isnan(rec.f1):
        line += (f"  held-out P {rec.precision:.3f} R {rec.recall:.3f} F1 {rec.f1:.3f} "
                 f"AUC {rec.auc:.3f}")
    return line


def run_verify(
    det_dir: str | Path,
    cube_path: str | Path,
    labels: dict[int, int] | None = None,
    *,
    epochs: int | None = None,
    init: str = "default",
    device: str = "auto",
    threshold: float | str = DEFAULT_THRESHOLD,
    band: float = DEFAULT_BAND,
    lr: float | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    verify_only: bool = False,
    quiet: bool = False,
    cube=None,
    rms: float | None = None,
    arch: str | None = None,
):
    """Train (with labels) and verify the candidates of an ``ssclump detect`` directory.

    Adds ``p_clump``, ``verdict`` and ``label`` to ``DIR/catalog.fits`` (every other
    column kept) and writes ``DIR/model.pt``, ``DIR/training_log.csv`` and
    ``DIR/training.png``.  ``cube``: the already-read
    :class:`~glue_ssclump.core.cube.PPVCube` of ``cube_path`` (the demo has it from
    detection), else it is read.

    Returns
    -------
    glue_ssclump.core.pipeline.Verification
    """
    import numpy as np
    from tqdm.auto import tqdm

    from .core.catalog import read_catalog, read_mask, write_catalog
    from .core.cube import read_cube
    from .core.pipeline import save_verification, verify
    from .core.progress import tqdm_progress
    from .core.training import TrainConfig

    det_dir = Path(det_dir)
    for name in ("catalog.fits", "mask.fits"):
        if not (det_dir / name).is_file():
            raise UserError(f"{det_dir / name} is missing: run `ssclump detect CUBE --out "
                            f"{det_dir}` first")
    cube = read_cube(cube_path) if cube is None else cube
    catalog = read_catalog(det_dir / "catalog.fits")
    mask = read_mask(det_dir / "mask.fits", cube=cube, catalog=catalog)
    cfg = {"device": device, "seed": seed}
    if epochs is not None:
        cfg["epochs"] = epochs
    if lr is not None:
        cfg["lr"] = lr
    if batch_size is not None:
        cfg["batch_size"] = batch_size
    try:
        config = TrainConfig(**cfg)
        with tqdm_progress("verify", disable=quiet or None) as progress:
            result = verify(
                cube.data, mask.astype(np.int32), catalog, labels or None, config=config,
                init=init, train_model=False if verify_only else None,
                threshold=threshold, uncertain_band=band, progress=progress,
                rms=rms, arch=arch,
                on_epoch=None if quiet else (lambda rec: tqdm.write(format_epoch(rec))),
            )
    except (ValueError, FloatingPointError) as exc:  # bad seeds/settings, divergence
        raise UserError(str(exc)) from exc
    if result.cancelled:
        raise UserError("training was cancelled; the catalogue was left unchanged")
    save_verification(result, det_dir, {"cube": str(cube_path)})
    write_catalog(result.catalog, det_dir / "catalog.fits")
    return result


def _verify_summary(result) -> str:
    from .core.ensemble import verifier_name

    c = result.counts()
    seeds = result.n_seeds
    trained = (f"trained {result.train_result.completed_epochs} epochs on "
               f"{seeds['clump']} clump / {seeds['not_clump']} not-clump seeds"
               if result.train_result is not None else f"model '{result.init}' applied")
    trained += f" ({verifier_name(result.model)})"
    source = {"option": "given with --rms", "catalogue": "from the catalogue's meta",
              "estimate": "estimated from the cube"}.get(result.rms_source, result.rms_source)
    unused = ""
    if result.train_result is None and getattr(result.model, "arch", "") == "ensemble" \
            and sum(seeds.values()) > 0:
        unused = ("\n  the labels are kept in the catalogue; the ensemble verifier is not "
                  "trained on them (to fine-tune on them: --arch paper)")
    return (f"{trained}; threshold {result.threshold:.3f}\n"
            f"  sample background rms {result.rms:.4g} K ({source}; the verdicts depend on "
            f"it)\n"
            f"  kept {c['clump']} clumps, rejected {c['rejected']}, uncertain "
            f"{c['uncertain']} (of {sum(c.values())} candidates)" + unused)


def cmd_verify(args: argparse.Namespace) -> int:
    from .core.labels import read_labels_csv

    labels = read_labels_csv(args.labels) if args.labels else None
    threshold = args.threshold
    result = run_verify(args.dir, args.cube, labels, epochs=args.epochs, init=args.init,
                        device=args.device, threshold=threshold, band=args.band, lr=args.lr,
                        batch_size=args.batch_size, seed=args.seed,
                        verify_only=args.verify_only, quiet=args.quiet,
                        rms=args.rms, arch=args.arch)
    print(_verify_summary(result))
    print(f"updated {Path(args.dir) / 'catalog.fits'}; model in {Path(args.dir) / 'model.pt'}")
    return 0


# --- demo -----------------------------------------------------------------------------
def run_demo(out: str | Path, cube_path: str | Path = DEFAULT_CUBE, epochs: int = 3,
             init: str = "default", quiet: bool = False, glue: bool = True,
             show: bool | None = None) -> dict[str, Path]:
    """The README's main job on the bundled L1448 cube.

    ClumpFind with the paper's settings at the estimated rms, cross-matched with
    dendrogram leaves; seeds from :func:`~glue_ssclump.core.pipeline.cross_match_seeds`
    (positives: found by both detectors; negatives: faint candidates only ClumpFind
    finds); SS-3D-Clump fine-tuned from the shipped model; verdicts written back.
    With ``glue`` it also writes a glue session (``l1448_verified.glu``) and
    screenshots; with a display (``show``, default: when one exists) it opens glue.
    """
    if show is None:
        show = glue and has_display()
    from .core.labels import write_labels_csv
    from .core.pipeline import cross_match_seeds

    out = Path(out)
    det_dir = out / "l1448_clumpfind"
    print(f"[1/2] detecting clump candidates in {cube_path}")
    det = run_detect(cube_path, "clumpfind", det_dir, crossmatch_with="dendrogram",
                     quiet=quiet)
    print(_summary(det))
    seeds = cross_match_seeds(det.catalog)
    seeds_path = write_labels_csv(det_dir / "seed_labels.csv", seeds)
    n_pos = sum(1 for v in seeds.values() if v == 1)
    print(f"      seeds: {n_pos} clumps (ClumpFind x dendrogram matches), "
          f"{len(seeds) - n_pos} not clumps (faint, unmatched) -> {seeds_path}")
    print(f"[2/2] SS-3D-Clump: fine-tuning for {epochs} epochs, then verifying")
    # The demo shows the in-session retraining of the paper's method on labels; the
    # default verifier (the ensemble) is never trained (docs/verifier.md).
    result = run_verify(det_dir, cube_path, seeds, epochs=epochs, init=init, quiet=quiet,
                        cube=det.cube, arch="paper")
    print(_verify_summary(result))
    paths = {"dir": det_dir, "catalog": det_dir / "catalog.fits", "mask": det_dir / "mask.fits",
             "model": det_dir / "model.pt", "seeds": seeds_path}
    app = None
    if glue:
        print("[glue] building the linked glue session")
        app, glue_paths = _glue_session(out, det, result.catalog, show)
        paths.update(glue_paths)
    for name, path in paths.items():
        print(f"  {name:<10} {path}")
    if app is not None and show:
        print("opening glue on the verified session (close the window to finish)")
        app.start(maximized=False)
    return paths


def has_display() -> bool:
    """Whether a Qt window can be shown (an X11 / Wayland display, not offscreen)."""
    import os

    if os.environ.get("QT_QPA_PLATFORM", "") == "offscreen":
        return False
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _glue_session(out: Path, det, catalog, show: bool):
    """The verified detection as a glue session (``.glu``) plus screenshots."""
    import os

    if not show:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from .integration.session import verified_collection
    from .qt.demo import build_application, write_session

    dc, cube_data, cat_data = verified_collection(det.cube, det.mask, catalog,
                                                  "L1448 13CO")
    app = build_application(dc, cube_data, cat_data)
    return app, write_session(app, out)


def cmd_demo(args: argparse.Namespace) -> int:
    run_demo(args.out, args.cube, epochs=args.epochs, init=args.init, quiet=args.quiet,
             glue=not args.no_glue, show=False if args.no_gui else None)
    return 0


# --- train-default ----------------------------------------------------------------------
def cmd_train_default(args: argparse.Namespace) -> int:
    from .core.pretrain import train_default_model
    from .core.progress import tqdm_progress
    from .core.training import DEFAULT_CHECKPOINT, TrainConfig

    out = Path(args.out) if args.out else DEFAULT_CHECKPOINT
    try:
        config = TrainConfig(epochs=args.epochs, seed=args.seed, device=args.device)
        with tqdm_progress("train-default", disable=args.quiet or None) as progress:
            from tqdm.auto import tqdm

            _, meta = train_default_model(out, seeds=tuple(args.cube_seeds),
                                          label_fraction=args.label_fraction, config=config,
                                          progress=progress, log=tqdm.write)
    except (ValueError, FloatingPointError) as exc:
        raise UserError(str(exc)) from exc
    print(f"wrote {out}; held-out metrics {meta['heldout_metrics']}")
    return 0


def _threshold(text: str) -> float | str:
    """argparse type of --threshold: a number in [0, 1], 'clusters' or 'elbow'."""
    if text.strip().lower() in ("clusters", "elbow"):
        return text.strip().lower()
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number, 'clusters' or 'elbow'") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is outside [0, 1]")
    return value


# --- parser ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssclump",
        description="Find molecular clump candidates in PPV cubes and verify them with "
        "SS-3D-Clump (Luo et al. 2024, A&A 683, A104).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "detect",
        help="detect clump candidates in a PPV cube",
        description="Detect clump candidates; write DIR/catalog.fits and DIR/mask.fits.",
        epilog=EPILOG_DETECT % {"cube": DEFAULT_CUBE},
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("cube", help="PPV FITS cube (3D, or 4D with one Stokes plane)")
    p.add_argument("--method", default="clumpfind",
                   help="detector: clumpfind (default), fellwalker, dendrogram, or a plugin's")
    p.add_argument("--rms", type=float, default=None,
                   help="noise rms in K (default: estimated from the cube)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="detector parameter, repeatable (see `ssclump detectors`)")
    p.add_argument("--crossmatch", metavar="METHOD", default=None,
                   help="also run METHOD and mark candidates both detectors find "
                        "(columns matched_by, n_detectors)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("detectors", help="list detectors and their parameters")
    p.set_defaults(func=cmd_detectors)

    p = sub.add_parser(
        "synth",
        help="write a synthetic PPV cube with injected clumps and its truth table",
        description="Write OUT.fits (Galactic WCS, K) and OUT_truth.ecsv.",
    )
    p.add_argument("out", help="output path prefix (OUT.fits, OUT_truth.ecsv)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shape", type=int, nargs=3, metavar=("NV", "NY", "NX"))
    p.add_argument("--n-clumps", type=int, default=None)
    p.add_argument("--rms", type=float, default=None, help="noise rms in K")
    p.add_argument("--preset", default=None, help="named setting, e.g. 'benchmark'")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser(
        "verify",
        help="verify candidates (the ensemble verifier; or SS-3D-Clump fine-tuned on labels)",
        description="Verify the candidates of an `ssclump detect` directory. By default the "
        "ensemble verifier (the shipped context and paper networks) scores them as it is; "
        "with --arch paper (or context) and --labels that network is fine-tuned (seeds = "
        "the labelled candidates) before verifying. Adds "
        "p_clump, verdict and label to DIR/catalog.fits and writes DIR/model.pt, "
        "DIR/training_log.csv and DIR/training.png.",
        epilog="LABELS.csv has a header line `clump_id,label` and one row per labelled "
        "candidate: 1 = clump, 0 = not a clump (2 = uncertain, kept but not used).",
    )
    p.add_argument("dir", metavar="DIR", help="output directory of `ssclump detect`")
    p.add_argument("--cube", required=True, help="the cube DIR was detected in")
    p.add_argument("--labels", metavar="LABELS.csv", help="manual labels (clump_id,label)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 20)")
    p.add_argument("--init", default="default",
                   help="starting model: default (shipped), scratch, or a checkpoint PATH")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threshold", default=DEFAULT_THRESHOLD, type=_threshold,
                   help="p_clump threshold; 'clusters': call as many candidates clumps as "
                        "the final Constrained-KMeans partition holds; 'elbow': ROC elbow "
                        f"of the labelled candidates (default {DEFAULT_THRESHOLD})")
    p.add_argument("--band", type=float, default=DEFAULT_BAND,
                   help=f"|p_clump - threshold| below this is 'uncertain' (default {DEFAULT_BAND})")
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--batch-size", type=int, default=None, help="training batch size")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--verify-only", action="store_true",
                   help="apply the model without training, even with --labels")
    p.add_argument("--rms", type=float, default=None,
                   help="noise rms (K) of the samples' background noise; default the "
                        "catalogue's, else estimated. The verdicts depend on it")
    p.add_argument("--arch", default=None, choices=ARCH_NAMES,
                   help="'ensemble': the default verifier, the shipped context and paper "
                        "networks applied as they are (never trained; the default with "
                        "--init default); 'paper': the paper's network, fine-tuned on "
                        "--labels (the default with another --init); 'context': "
                        "surroundings, masks and SNR as extra channels")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "train-default",
        help="(re)make the shipped default model from synthetic cubes",
        description="Train SS-3D-Clump from scratch on ClumpFind candidates of synthetic "
        "cubes (preset 'benchmark'), a fraction of them labelled from the truth, and write "
        "the checkpoint (default: the package's ss3dclump_default.pt).",
    )
    p.add_argument("--out", default=None, help="checkpoint path")
    p.add_argument("--cube-seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--label-fraction", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train_default)

    p = sub.add_parser(
        "demo",
        help="the whole job on the bundled L1448 13CO cube (detect, seed, train, verify)",
    )
    p.add_argument("--out", default="demo_out", help="output directory (default demo_out)")
    p.add_argument("--cube", default=str(DEFAULT_CUBE), help="cube (default: bundled L1448)")
    p.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs (default 3)")
    p.add_argument("--init", default="default", help="starting model (default: shipped)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-gui", action="store_true",
                   help="never open glue (default: open it when a display exists)")
    p.add_argument("--no-glue", action="store_true",
                   help="skip the glue session and screenshots")
    p.set_defaults(func=cmd_demo)

    from .survey_cli import add_parser as add_survey_parser
    add_survey_parser(sub)
    from .galaxy_cli import add_parser as add_galaxy_parser
    add_galaxy_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ssclump`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except _user_errors() as exc:
        # One line, whatever the message holds (wcslib texts carry newlines).
        text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"ssclump {args.command}: error: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
