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


class UserError(Exception):
    """A problem with the user's input: printed without a traceback, exit code 2."""


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types whose message is enough for the user (no traceback)."""
    errors: list[type[BaseException]] = [UserError, FileNotFoundError, IsADirectoryError]
    from .core.detectors import DetectorError

    errors.append(DetectorError)
    for module, name in (
        ("glue_ssclump.core.cube", "CubeError"),
        ("glue_ssclump.core.checkpoint", "CheckpointError"),
        ("glue_ssclump.core.labels", "LabelsError"),
    ):
        try:
            mod = __import__(module, fromlist=[name])
            errors.append(getattr(mod, name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


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
    (PPVCube, DetectionResult, astropy.table.Table)
    """
    from .core.catalog import build_catalog, crossmatch
    from .core.cube import estimate_rms, read_cube
    from .core.detectors import run_detector
    from .core.progress import tqdm_progress

    cube = read_cube(cube_path)
    rms_used = float(rms) if rms is not None else estimate_rms(cube.data)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tqdm_progress(f"{method}", disable=quiet or None) as progress:
        det = run_detector(cube.data, method, rms_used, params, progress.span(0, 0.8))
        cat = build_catalog(cube, det.labels, det.detector, rms_used, det.params,
                            progress=progress.span(0.8, 0.9))
        if crossmatch_with:
            other = run_detector(cube.data, crossmatch_with, rms_used, None,
                                 progress.span(0.9, 0.99))
            other_cat = build_catalog(cube, other.labels, other.detector, rms_used, other.params)
            cat = crossmatch(cat, det.labels, other_cat, other.labels)
        progress.update(1.0, "done")
    write_detection(out, cube, det.labels, cat)
    return cube, det, cat


def write_detection(out: Path, cube, labels, catalog) -> tuple[Path, Path]:
    """Write ``catalog.fits`` and ``mask.fits`` (int32, the cube's WCS) into ``out``."""
    import numpy as np

    cat_path = out / "catalog.fits"
    mask_path = out / "mask.fits"
    catalog.write(cat_path, overwrite=True)
    cube.to_hdu(np.asarray(labels, dtype=np.int32)).writeto(mask_path, overwrite=True)
    return cat_path, mask_path


def _summary(det, cat, rms: float) -> str:
    import numpy as np

    n = len(cat)
    lines = [f"{det.detector}: {n} candidates at rms {rms:.4g} K"]
    if n:
        snr = np.asarray(cat["snr_peak"])
        lines.append(
            f"  peak SNR median {np.median(snr):.1f} (min {snr.min():.1f}, max {snr.max():.1f}); "
            f"{int(np.sum(cat['touches_edge']))} touch the cube edge or a blank"
        )
        if "n_detectors" in cat.colnames:
            lines.append(f"  {int(np.sum(cat['n_detectors'] > 1))} also found by "
                         f"{cat.meta.get('crossmatch_with', 'the second detector')}")
    return "\n".join(lines)


def cmd_detect(args: argparse.Namespace) -> int:
    from .core.detectors import parse_param_assignments

    params = parse_param_assignments(args.param)
    cube, det, cat = run_detect(args.cube, args.method, args.out, args.rms, params,
                                args.crossmatch, args.quiet)
    print(_summary(det, cat, det.rms))
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
    paths = write_synthetic(args.out, **kwargs)
    for p in paths if isinstance(paths, (list, tuple)) else [paths]:
        print(f"wrote {p}")
    return 0


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
        print(f"ssclump {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
