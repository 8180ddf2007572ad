"""Running a survey on dask.distributed, resuming it, and merging its results.

:func:`run_survey` (and :func:`survey`, which returns only the merged table) takes a
list of cubes (paths or globs), measures each cube's noise once (a task per cube), cuts
every cube into tiles (:func:`~.tiles.plan_tiles`), runs one task per tile that has no
result file yet (:func:`~.tile.process_tile`; failed tasks are retried by dask, then
reported while the others finish), and merges every result file into

* ``OUT/survey_catalog.fits``: one row per clump, ``survey_id`` 1..N, with provenance
  columns (``source_file``, ``tile``, ``detector``, ``params``, ``package_version``);
* ``OUT/cubes/KEY/catalog.fits`` and ``mask.fits`` per cube (the tiles' masks
  stitched; ``clump_id`` numbers clumps by decreasing peak, ties by peak voxel), the
  same files ``ssclump detect`` writes, so glue opens them the same way;
* ``OUT/survey_summary.json``: counts, failures with their errors, unresolved clumps.

Every file is written atomically and the merge is recomputed from the tile files on
every run, so a run killed at any moment resumes without losing or repeating a row.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack

from ...version import __version__
from ..atomic import atomic_path, write_atomic
from ..catalog import write_catalog
from ..cube import mask_header
from ..errors import SSClumpError
from .tile import ModelPlugin, SurveySettings, process_tile, read_tile_result
from .tiles import (
    CubeInfo,
    SurveyInputError,
    Tile,
    check_spectral_axes,
    cube_key,
    expand_inputs,
    inspect_cube,
    plan_tiles,
    read_window,
)

__all__ = ["SurveyResult", "merge_cube", "merge_survey", "open_survey_cube", "run_survey",
           "survey"]

log = logging.getLogger(__name__)

#: Event sink: ``on_event(kind, info)`` with kind 'dashboard', 'planned', 'tile', 'merged'.
EventCallback = Callable[[str, dict], None]


@dataclass
class SurveyResult:
    """What a survey run produced.

    Attributes
    ----------
    catalog : astropy.table.Table
        The merged survey catalogue (also in ``OUT/survey_catalog.fits``).
    out : Path
        The output folder.
    failures : dict
        ``{input or 'FILE TILE': error message}`` for every input or tile that failed.
    unresolved : Table
        Owned clumps no window up to the size limit could settle (reported, not in the
        catalogue).
    tiles_total, tiles_run, tiles_skipped : int
        Tiles planned; run now; already finished (resumed).
    cubes : list of CubeInfo
        The cubes that were surveyed.
    summaries : list of dict
        Per-tile summaries of the tiles run now (seconds, windows, peak RSS, ...).
    dashboard : str or None
        The dask dashboard's address.
    """

    catalog: Table
    out: Path
    failures: dict[str, str] = field(default_factory=dict)
    unresolved: Table = field(default_factory=Table)
    tiles_total: int = 0
    tiles_run: int = 0
    tiles_skipped: int = 0
    cubes: list[CubeInfo] = field(default_factory=list)
    summaries: list[dict] = field(default_factory=list)
    dashboard: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failures


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, SSClumpError):
        return str(exc)
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _make_client(workers: int | None, threads_per_worker: int, processes: bool,
                 scheduler: str | None, memory_limit: str | float | None):
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    n = int(workers) if workers else max(1, (os.cpu_count() or 1) // threads_per_worker)
    cluster = LocalCluster(n_workers=n, threads_per_worker=threads_per_worker,
                           processes=processes, dashboard_address=":0",
                           memory_limit=memory_limit if memory_limit is not None else "auto")
    return Client(cluster), cluster


def _info_path(out: Path, key: str, rms: float | None, need_lag1: bool) -> Path:
    tag = f"rms{rms!r}" if rms is not None else "rmsauto"
    return out / "cubes" / key / f"info-{tag}{'-lag1' if need_lag1 else ''}.json"


def _tile_dir(out: Path, key: str, settings: SurveySettings) -> Path:
    return out / "cubes" / key / f"tiles-{settings.digest()}"


def run_survey(
    cubes: Sequence[str | os.PathLike],
    method: str = "clumpfind",
    out: str | os.PathLike = "survey_out",
    *,
    params: Mapping[str, Any] | None = None,
    rms: float | None = None,
    verify: str | os.PathLike | None = None,
    tile: tuple[int, int] = (256, 256),
    halo: int = 24,
    workers: int | None = None,
    threads_per_worker: int = 1,
    processes: bool = True,
    scheduler: str | None = None,
    client: Any = None,
    retries: int = 2,
    max_window_factor: float = 8.0,
    threshold: float = 0.5,
    band: float = 0.1,
    device: str = "auto",
    gpu: bool = False,
    memory_limit: str | float | None = None,
    on_event: EventCallback | None = None,
) -> SurveyResult:
    """Detect (and optionally verify) clumps in many cubes, tile by tile, on dask.

    Parameters
    ----------
    cubes : sequence of str
        FITS cubes: paths or globs (each glob sorted).  Missing files, 2D images and
        cubes whose spectral axis differs from the first cube's are reported in
        ``failures`` while the others are surveyed.
    method : str
        Detector (as ``ssclump detect --method``).
    out : str or PathLike
        Output folder (created); a rerun with the same settings skips finished tiles.
    params : mapping, optional
        Detector parameters (numbers in K, strings like ``'3rms'``).
    rms : float, optional
        Noise rms (K) for every cube; default measured once per cube.
    verify : path, optional
        An SS-3D-Clump checkpoint: adds ``p_clump`` and ``verdict`` (``threshold``,
        ``band``); loaded once per worker on its device (``device``).
    tile : (int, int)
        Tile core size (y, x) in pixels; every tile holds the whole spectral axis.
    halo : int
        Halo (pixels) read around each core; see :mod:`.border` for the rule.
    workers, threads_per_worker, processes, memory_limit
        The :class:`distributed.LocalCluster` made when neither ``client`` nor
        ``scheduler`` is given (default: one single-threaded worker process per core).
    scheduler : str, optional
        Address of a running dask scheduler (``tcp://host:8786``), e.g. one started
        by dask-jobqueue on a batch system.
    client : distributed.Client, optional
        Use this client (the caller owns it).
    retries : int
        Dask retries of a failed tile before it is reported.
    max_window_factor : float
        Size limit of a window grown to settle a border clump, in first windows.
    gpu : bool
        Ask for the dask resource ``GPU=1`` for every tile (workers started with
        ``--resources GPU=1``).
    on_event : callable, optional
        ``on_event(kind, info)``: 'dashboard' ({'link'}), 'planned' ({'total',
        'skipped'}), 'tile' ({'summary'} or {'error', 'tile'}), 'merged'.

    Returns
    -------
    SurveyResult
    """
    emit = on_event or (lambda kind, info: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tile = (int(tile[0]), int(tile[1]))
    settings = SurveySettings(method=method, params=dict(params or {}), tile=tile,
                              halo=int(halo), verify=os.fspath(verify) if verify else None,
                              threshold=float(threshold), band=float(band),
                              max_window_factor=float(max_window_factor), device=device)
    _check_settings(settings)
    paths, failures = expand_inputs([os.fspath(c) for c in cubes])
    if not paths:
        raise SurveyInputError("no cube to survey: " + "; ".join(failures.values())
                               if failures else "no cube to survey: give FITS cubes or globs")

    own_cluster = None
    if client is None:
        client, own_cluster = _make_client(workers, threads_per_worker, processes, scheduler,
                                           memory_limit)
        own_client = True
    else:
        own_client = False
    result = SurveyResult(catalog=Table(), out=out, failures=failures)
    try:
        result.dashboard = getattr(client, "dashboard_link", None)
        emit("dashboard", {"link": result.dashboard})
        if settings.verify:
            client.register_plugin(ModelPlugin(settings.verify, device, threads_per_worker))
        infos = _inspect(client, paths, out, rms, bool(settings.verify), retries, failures)
        spectral = check_spectral_axes(infos)
        failures.update(spectral)
        infos = [i for i in infos if i.path not in spectral]
        result.cubes = infos
        _run_tiles(client, infos, out, settings, retries, gpu, result, emit)
        result.catalog, result.unresolved = merge_survey(out, result.cubes, settings, client,
                                                         result.failures)
    finally:
        if own_client:
            client.close()
        if own_cluster is not None:
            own_cluster.close()
    _write_summary(out, settings, result)
    emit("merged", {"rows": len(result.catalog)})
    return result


def survey(cubes: Sequence[str | os.PathLike], method: str = "clumpfind",
           out: str | os.PathLike = "survey_out", **kwargs: Any) -> Table:
    """:func:`run_survey`, returning the merged catalogue (failures in ``meta``).

    ``table.meta['failures']`` maps each failed input or tile to its error.
    """
    res = run_survey(cubes, method, out, **kwargs)
    res.catalog.meta["failures"] = dict(res.failures)
    return res.catalog


def _check_settings(settings: SurveySettings) -> None:
    from ..detectors import get_detector

    det = get_detector(settings.method)  # unknown names fail before any cluster starts
    det.resolve(settings.params, 1.0)    # and so do bad parameters
    if settings.verify and not os.path.isfile(settings.verify):
        raise SurveyInputError(f"model {settings.verify}: no such file; give a checkpoint "
                               "written by `ssclump verify` / `ssclump train-default`")
    if settings.verify:
        _check_survey_model(settings.verify)
    if min(settings.tile) < 8:
        raise SurveyInputError(f"tile {settings.tile} is too small; use at least 8,8 "
                               "(typically 256,256)")
    if settings.halo < 0:
        raise SurveyInputError(f"halo {settings.halo} must be >= 0 pixels")


def _check_survey_model(path: str) -> None:
    """Before any cluster starts: the file is a readable checkpoint of the paper's
    network, the one the tiles' one-channel samples fit."""
    from ..checkpoint import CheckpointError, load_checkpoint

    try:
        arch = load_checkpoint(path)[1].get("arch", "paper")
    except CheckpointError as exc:
        raise SurveyInputError(f"model {path}: {exc}") from exc
    if arch != "paper":
        raise SurveyInputError(
            f"model {path} is an arch={arch!r} checkpoint, but the survey scores the "
            "paper's one-channel samples; give a paper-network checkpoint (the shipped "
            "glue_ssclump/data/ss3dclump_default.pt, or one from `ssclump verify --arch "
            "paper`)")


def _inspect(client, paths: list[str], out: Path, rms: float | None, need_lag1: bool,
             retries: int, failures: dict[str, str]) -> list[CubeInfo]:
    from distributed import wait

    infos: dict[str, CubeInfo] = {}
    futures = {}
    for path in paths:
        try:
            key = cube_key(path)
        except OSError as exc:
            failures[path] = f"{path}: cannot be read ({exc}); check the file"
            continue
        cached = _info_path(out, key, rms, need_lag1)
        if cached.is_file():
            infos[path] = CubeInfo.from_json(cached.read_text())
            continue
        futures[path] = client.submit(_inspect_task, path, rms, need_lag1,
                                      key=f"inspect-{key}-{hash((rms, need_lag1)) & 0xFFFF}",
                                      retries=retries, pure=False)
    if futures:
        wait(list(futures.values()))
    for path, fut in futures.items():
        if fut.status == "finished" and isinstance(fut.result(), str):
            failures[path] = fut.result()
        elif fut.status == "finished":
            info = fut.result()
            infos[path] = info
            text = info.to_json()
            write_atomic(_info_path(out, info.key, rms, need_lag1),
                         lambda p, text=text: p.write_text(text))
        else:
            failures[path] = _error_text(fut.exception())
    return [infos[p] for p in paths if p in infos]


def _inspect_task(path: str, rms: float | None, need_lag1: bool) -> CubeInfo | str:
    """inspect_cube, with bad input returned as its message: retrying cannot fix it."""
    try:
        return inspect_cube(path, rms, need_lag1=need_lag1)
    except SSClumpError as exc:
        return str(exc)


def _run_tiles(client, infos: list[CubeInfo], out: Path, settings: SurveySettings,
               retries: int, gpu: bool, result: SurveyResult, emit: EventCallback) -> None:
    from distributed import as_completed

    futures = {}
    total = skipped = 0
    for info in infos:
        folder = _tile_dir(out, info.key, settings)
        folder.mkdir(parents=True, exist_ok=True)
        for t in plan_tiles(info, settings.tile, settings.halo):
            total += 1
            path = folder / f"{t.name}.npz"
            if path.is_file():
                skipped += 1
                continue
            fut = client.submit(process_tile, t, settings, os.fspath(path),
                                key=f"tile-{info.key}-{t.name}-{settings.digest()}",
                                retries=retries, pure=False,
                                resources={"GPU": 1} if gpu else None)
            futures[fut] = t
    result.tiles_total, result.tiles_skipped = total, skipped
    emit("planned", {"total": total, "skipped": skipped, "to_run": len(futures)})
    for fut in as_completed(list(futures)):
        t: Tile = futures[fut]
        if fut.status == "finished":
            summary = fut.result()
            result.summaries.append(summary)
            result.tiles_run += 1
            emit("tile", {"summary": summary})
        else:
            msg = _error_text(fut.exception())
            result.failures[f"{t.cube.path} {t.name}"] = msg
            emit("tile", {"error": msg, "tile": f"{t.cube.path} {t.name}"})
        fut.release()


# -- merging ------------------------------------------------------------------------------
def merge_cube(out: str | os.PathLike, info: CubeInfo, settings: SurveySettings
               ) -> tuple[Table, Table]:
    """Merge one cube's finished tiles: its ``catalog.fits`` and stitched ``mask.fits``.

    Runs as a dask task per cube (the mask is filled through a memory map, never held
    whole).  Only tile files are read, so it can run again at any time.

    Returns
    -------
    catalog : Table
        The cube's clumps, ``clump_id`` 1..n by decreasing peak (ties: peak voxel in
        (v, y, x) order), with the provenance columns; empty if none.
    unresolved : Table
        Owned clumps its tiles could not settle, with ``source_file`` and ``tile``.
    """
    out = Path(out)
    folder = _tile_dir(out, info.key, settings)
    files = sorted(folder.glob("t*.npz")) if folder.is_dir() else []
    # Catalogues first; the mask crops (together about the cube's size) one at a time.
    results = [_read_checked(f) for f in files]
    unresolved = []
    for r, f in zip(results, files, strict=True):
        if len(r.unresolved):
            un = r.unresolved.copy()
            un["source_file"] = info.path
            un["tile"] = f.stem
            unresolved.append(un)
    un_table = vstack(unresolved) if unresolved else Table()
    with_rows = [r for r in results if len(r.catalog)]
    with_files = [f for r, f in zip(results, files, strict=True) if len(r.catalog)]
    if not with_rows:
        return Table(), un_table
    cats = [r.catalog for r in with_rows]
    cat = vstack(cats, metadata_conflicts="silent")
    order = np.lexsort((np.asarray(cat["peak_x"]), np.asarray(cat["peak_y"]),
                        np.asarray(cat["peak_z"]), -np.asarray(cat["peak_value"])))
    # Row r of each tile's table is that tile's label r + 1; map it to the cube's id.
    new_id = np.empty(len(cat), dtype=np.int64)
    new_id[order] = np.arange(1, len(cat) + 1)
    offsets = np.cumsum([0] + [len(c) for c in cats])
    cat = cat[order]
    cat["clump_id"] = np.arange(1, len(cat) + 1, dtype=np.int64)
    cat.meta = dict(cats[0].meta)
    cat.meta.update(source=info.path, rms=info.rms, survey_tiles=len(files))
    cube_dir = out / "cubes" / info.key
    write_catalog(cat, cube_dir / "catalog.fits")
    _write_mask(cube_dir / "mask.fits", info, with_files,
                [new_id[offsets[k]:offsets[k + 1]] for k in range(len(cats))])
    cat["source_file"] = info.path
    cat["frame"] = info.frame
    cat["params"] = json.dumps({str(k): str(v) for k, v in settings.params.items()},
                               sort_keys=True)
    cat["package_version"] = __version__
    return cat, un_table


def _read_checked(path: Path):
    """A tile result; an unreadable one (a damaged disk, a foreign file) is removed so
    that the next run computes the tile again, and reported."""
    try:
        return read_tile_result(path, with_mask=False)
    except Exception as exc:  # noqa: BLE001 - any damage means: recompute the tile
        path.unlink(missing_ok=True)
        raise SurveyInputError(
            f"{path} was unreadable ({type(exc).__name__}: {exc}) and has been removed; "
            "run the survey again to recompute that tile") from None


def merge_survey(out: str | os.PathLike, infos: Sequence[CubeInfo],
                 settings: SurveySettings, client: Any = None,
                 failures: dict[str, str] | None = None) -> tuple[Table, Table]:
    """Merge every cube (:func:`merge_cube`, as dask tasks when ``client`` is given).

    Returns
    -------
    catalog : Table
        The survey catalogue, ``survey_id`` 1..N in input order then ``clump_id``
        (also written to ``OUT/survey_catalog.fits``).
    unresolved : Table
        Owned clumps that could not be settled, with ``source_file`` and ``tile``.

    A cube whose merge fails is left out and its error goes to ``failures`` (keyed by
    the cube's path) when given, else it is raised.
    """
    out = Path(out)
    if client is not None:
        from distributed import wait

        futures = [client.submit(merge_cube, os.fspath(out), info, settings, pure=False,
                                 key=f"merge-{info.key}-{settings.digest()}")
                   for info in infos]
        wait(futures)
        outcomes = [(f.result(), None) if f.status == "finished" else (None, f.exception())
                    for f in futures]
    else:
        outcomes = []
        for info in infos:
            try:
                outcomes.append((merge_cube(out, info, settings), None))
            except Exception as exc:  # noqa: BLE001 - reported per cube below
                outcomes.append((None, exc))
    parts = []
    for info, (part, exc) in zip(infos, outcomes, strict=True):
        if exc is None:
            parts.append(part)
        elif failures is None:
            raise exc
        else:
            failures[info.path] = _error_text(exc)
    tables = [cat for cat, _ in parts if len(cat)]
    unresolved = [un for _, un in parts if len(un)]
    if tables:
        merged = vstack(tables, metadata_conflicts="silent")
        merged.add_column(np.arange(1, len(merged) + 1, dtype=np.int64), name="survey_id",
                          index=0)
        merged.meta = {"detector": settings.method, "params": dict(settings.params),
                       "version": __version__, "survey_cubes": [i.path for i in infos],
                       "tile": list(settings.tile), "halo": settings.halo}
        write_catalog(merged, out / "survey_catalog.fits")
    else:
        merged = Table()
    return merged, vstack(unresolved) if unresolved else Table()


def _write_mask(path: Path, info: CubeInfo, files: list[Path], ids: list[np.ndarray]
                ) -> None:
    """The cube's mask, stitched from the tiles' crops without holding the cube.

    The FITS file is laid out on disk and filled through a memory map; written beside
    the target and renamed.
    """
    nv, ny, nx = info.shape
    probe = read_window(info.path, info.hdu, ((0, nv), (0, 1), (0, 1)))
    header = mask_header(probe.header) if probe is not None else fits.Header()
    header["NAXIS2"], header["NAXIS1"] = ny, nx
    hdu = fits.PrimaryHDU(data=np.zeros((1, 1, 1), dtype=np.int32))
    for card in header.cards:
        if card.keyword not in ("SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3",
                                "EXTEND", "", "COMMENT", "HISTORY"):
            hdu.header[card.keyword] = card.value
    hdu.header["NAXIS3"], hdu.header["NAXIS2"], hdu.header["NAXIS1"] = nv, ny, nx
    head = hdu.header.tostring().encode("ascii")
    nbytes = nv * ny * nx * 4
    total = len(head) + nbytes + (-nbytes) % 2880
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(head)
            fh.truncate(total)
        mm = np.memmap(tmp, dtype=">i4", mode="r+", offset=len(head), shape=(nv, ny, nx))
        for f, lut_ids in zip(files, ids, strict=True):
            r = read_tile_result(f)
            lut = np.concatenate([[0], lut_ids]).astype(np.int32)
            box = tuple(slice(o, o + n) for o, n in zip(r.origin, r.mask.shape, strict=True))
            view = mm[box]
            on = r.mask > 0
            view[on] = lut[r.mask[on]]
        mm.flush()
        del mm


def _write_summary(out: Path, settings: SurveySettings, result: SurveyResult) -> None:
    doc = {
        "settings": asdict(settings),
        "package_version": __version__,
        "cubes": [i.path for i in result.cubes],
        "tiles_total": result.tiles_total,
        "tiles_run": result.tiles_run,
        "tiles_skipped": result.tiles_skipped,
        "clumps": len(result.catalog),
        "failures": result.failures,
        "unresolved": [dict(zip(result.unresolved.colnames, (v.item() if hasattr(v, "item")
                                                            else v for v in row),
                                strict=True)) for row in result.unresolved],
    }
    text = json.dumps(doc, indent=1, default=str)
    write_atomic(out / "survey_summary.json", lambda p: p.write_text(text))


def open_survey_cube(out: str | os.PathLike, cube: str | os.PathLike):
    """One cube of a finished survey: ``(PPVCube, mask, catalogue)``.

    What glue's "cube + catalogue + mask" pairing needs
    (``glue_ssclump.integration.factory.make_candidate_pair(cube, mask, catalog,
    name)``); the mask's values are the catalogue's ``clump_id``.  Reads the whole
    cube: use it for one cube at a time.

    Parameters
    ----------
    out : path
        The survey's output folder.
    cube : path
        The cube's file as given to the survey (matched by real path).
    """
    from ..catalog import read_catalog
    from ..cube import read_cube

    want = os.path.realpath(cube)
    for cat_path in sorted(Path(out).glob("cubes/*/catalog.fits")):
        catalog = read_catalog(cat_path)
        if os.path.realpath(str(catalog.meta.get("source", ""))) == want:
            mask = np.asarray(fits.getdata(cat_path.parent / "mask.fits"), dtype=np.int32)
            return read_cube(cube), mask, catalog
    raise SurveyInputError(f"{cube} has no results in {out}: run `ssclump survey` on it "
                           "first (or check the folder)")
