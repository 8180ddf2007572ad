"""``ssclump survey``: detect (and verify) clumps in many cubes, or a huge one, on dask.

The parser is added to ``ssclump`` by :func:`add_parser`; the work is
:func:`glue_ssclump.core.survey.run_survey`.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

EPILOG = textwrap.dedent(
    """\
    Each cube is cut into sky tiles (--tile Y,X pixels, whole spectral axis) read with a
    --halo around them; a clump belongs to the tile whose core holds its peak voxel, and
    clumps the window cannot settle are re-run on a larger window (docs/survey.md).
    The noise rms is measured once per cube and used by every tile.

    Outputs in DIR: survey_catalog.fits (all clumps, survey_id, provenance columns),
    cubes/KEY/catalog.fits + mask.fits per cube, survey_summary.json.  Rerunning the
    same command skips finished tiles (also after a crash or a kill).

    Examples:
      ssclump survey 'mwisp/*.fits' --method clumpfind --out survey/ --workers 2
      ssclump survey big.fits --method fellwalker --tile 256,256 --halo 24 --out big/
      ssclump survey 'cubes/*.fits' --verify model.pt --scheduler tcp://head:8786 --out s/
    """
)


def _tile(text: str) -> tuple[int, int]:
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give two pixel counts, e.g. 256,256"
                                         ) from None
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2 or min(vals) < 8:
        raise argparse.ArgumentTypeError(f"{text!r}: give two pixel counts >= 8, e.g. 256,256")
    return vals  # type: ignore[return-value]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``survey`` subcommand to ``ssclump``'s subparsers."""
    p = subparsers.add_parser(
        "survey",
        help="detect (and verify) clumps in many cubes or a huge one, tiled, on dask",
        description="Run a detector over a list of cubes (paths or globs), tile by tile, "
        "on dask.distributed (a local cluster, or --scheduler ADDRESS); optionally verify "
        "with an SS-3D-Clump checkpoint; merge everything into one catalogue.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("cubes", nargs="+", metavar="CUBE",
                   help="FITS cubes or quoted globs ('dir/*.fits')")
    p.add_argument("--method", default="clumpfind",
                   help="detector: clumpfind (default), fellwalker, dendrogram, or a plugin's")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="detector parameter, repeatable (see `ssclump detectors`)")
    p.add_argument("--rms", type=float, default=None,
                   help="noise rms in K for every cube (default: measured once per cube)")
    p.add_argument("--verify", metavar="MODEL", default=None,
                   help="SS-3D-Clump checkpoint: add p_clump and verdict to every clump")
    p.add_argument("--threshold", type=float, default=0.5, help="verdict threshold (0.5)")
    p.add_argument("--band", type=float, default=0.1, help="uncertain band (0.1)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--tile", type=_tile, default=(256, 256), metavar="Y,X",
                   help="tile core size in sky pixels (default 256,256)")
    p.add_argument("--halo", type=int, default=24,
                   help="pixels read around each tile (default 24 = 9 + half the 30^3 sample)")
    p.add_argument("--workers", type=int, default=None,
                   help="local workers (default: one per core); ignored with --scheduler")
    p.add_argument("--threads-per-worker", type=int, default=1)
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="use a running dask scheduler, e.g. tcp://head:8786 (dask-jobqueue)")
    p.add_argument("--retries", type=int, default=2, help="dask retries per tile (default 2)")
    p.add_argument("--max-window", type=float, default=8.0, metavar="FACTOR",
                   help="largest grown window, in first windows (default 8)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="verification device on the workers (default auto: CUDA if present)")
    p.add_argument("--gpu", action="store_true",
                   help="tiles need the dask resource GPU=1 (workers --resources GPU=1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_survey)
    return p


def cmd_survey(args: argparse.Namespace) -> int:
    """Run the survey; exit status 1 if any input or tile failed."""
    from tqdm.auto import tqdm

    from .core.detectors import parse_param_assignments
    from .core.survey import run_survey

    params = parse_param_assignments(args.param)
    bar = None

    def on_event(kind: str, info: dict) -> None:
        nonlocal bar
        if kind == "dashboard" and info.get("link"):
            print(f"dask dashboard: {info['link']}", flush=True)
        elif kind == "planned":
            print(f"{info['total']} tiles, {info['skipped']} already finished", flush=True)
            bar = tqdm(total=info["to_run"], desc="survey tiles", unit="tile",
                       disable=args.quiet or None)
        elif kind == "tile" and bar is not None:
            if "error" in info:
                tqdm.write(f"failed: {info['tile']}: {info['error']}")
            else:
                s = info["summary"]
                bar.set_postfix_str(f"{Path(s['cube']).name} {s['tile']}: {s['clumps']}",
                                    refresh=False)
            bar.update(1)

    try:
        result = run_survey(
            args.cubes, args.method, args.out, params=params, rms=args.rms,
            verify=args.verify, tile=args.tile, halo=args.halo, workers=args.workers,
            threads_per_worker=args.threads_per_worker, scheduler=args.scheduler,
            retries=args.retries, max_window_factor=args.max_window,
            threshold=args.threshold, band=args.band, device=args.device, gpu=args.gpu,
            on_event=on_event)
    finally:
        if bar is not None:
            bar.close()
    print(summary_text(result))
    return 1 if result.failures else 0


def summary_text(result) -> str:
    """The survey's end-of-run summary (counts, failures, unresolved clumps)."""
    lines = [
        f"{len(result.cubes)} cubes, {result.tiles_total} tiles ({result.tiles_run} run now, "
        f"{result.tiles_skipped} already finished): {len(result.catalog)} clumps",
    ]
    if len(result.catalog) and "verdict" in result.catalog.colnames:
        import numpy as np

        v = np.asarray(result.catalog["verdict"])
        lines.append(f"  verdicts: {int(np.sum(v == 'clump'))} clump, "
                     f"{int(np.sum(v == 'rejected'))} rejected, "
                     f"{int(np.sum(v == 'uncertain'))} uncertain")
    if len(result.unresolved):
        lines.append(f"  {len(result.unresolved)} border clumps could not be settled within "
                     "--max-window (listed in survey_summary.json; raise --halo or "
                     "--max-window)")
    lines.append(f"  wrote {result.out / 'survey_catalog.fits'}, per-cube catalog.fits + "
                 f"mask.fits under {result.out / 'cubes'}, survey_summary.json")
    if result.failures:
        lines.append(f"{len(result.failures)} failed (the rest completed):")
        lines += [f"  {msg}" if msg.startswith(name) else f"  {name}: {msg}"
                  for name, msg in result.failures.items()]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="ssclump")
    add_parser(parser.add_subparsers(dest="command"))
    ns = parser.parse_args()
    sys.exit(ns.func(ns))
