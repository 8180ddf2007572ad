"""The work of one tile: detect in its window, keep the owned and settled clumps, verify.

:func:`process_tile` runs on a dask worker (or anywhere): it reads the tile's window
(memory-mapped), runs the detector with the cube's global rms, keeps the clumps whose
peak lies in the core, re-runs the detector on a grown window for owned clumps that
the window cannot settle (:mod:`.border`), optionally scores the kept clumps with an
SS-3D-Clump checkpoint (loaded once per worker, :class:`ModelPlugin`), and writes one
result file atomically (:func:`write_tile_result`).  A tile whose result file exists
is finished: reruns skip it.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table, vstack
from distributed.diagnostics.plugin import WorkerPlugin
from scipy import ndimage as ndi

from ...version import __version__
from ..atomic import atomic_path
from ..catalog import build_catalog
from ..detectors import get_detector, run_detector
from ..samples import NOISE_BANK_SHAPE, CandidateSamples, _noise_draws
from .border import island_mask, island_rule, unsettled_islands
from .tiles import Tile, read_window

__all__ = ["ModelPlugin", "SurveySettings", "TileResult", "process_tile",
           "read_tile_result", "write_tile_result"]

#: Windows one tile may use (the first and its re-runs) before it reports what is left.
MAX_WINDOWS = 12

#: Name of the worker plugin that holds the verification model.
PLUGIN_NAME = "glue-ssclump-model"


@dataclass(frozen=True)
class SurveySettings:
    """Everything that decides a tile's result (its hash names the result folder).

    Attributes
    ----------
    method : str
        Detector name.
    params : dict
        Detector parameters as given (numbers in K, strings like ``'3rms'``).
    tile : (int, int)
        Core size (y, x) in pixels.
    halo : int
        Halo in pixels on each sky side.
    verify : str or None
        SS-3D-Clump checkpoint to score the clumps with.
    threshold, band : float
        Verdict threshold and uncertain band (see ``ssclump verify``).
    max_window_factor : float
        A window grown to settle clumps may hold at most this many times the voxels of
        the first window; clumps still unsettled are reported.
    device : str
        Device for verification on the workers ('auto': CUDA where present).
    batch_size : int or None
        Inference batch size.
    """

    method: str
    params: dict = field(default_factory=dict)
    tile: tuple[int, int] = (256, 256)
    halo: int = 24
    verify: str | None = None
    threshold: float = 0.5
    band: float = 0.1
    max_window_factor: float = 8.0
    device: str = "auto"
    batch_size: int | None = None

    def digest(self) -> str:
        """Hash of the settings that change results (not device or batch size)."""
        d = asdict(self)
        d.pop("device")
        d.pop("batch_size")
        d["params"] = {str(k): str(v) for k, v in sorted(d["params"].items())}
        if self.verify:
            st = os.stat(self.verify)
            d["verify"] = f"{os.path.realpath(self.verify)}|{st.st_size}|{st.st_mtime_ns}"
        d["version"] = __version__
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


@dataclass
class TileResult:
    """A tile's owned clumps (catalogue rows in global pixels) and their mask crop."""

    catalog: Table
    mask: np.ndarray           # int32 crop; values = row number + 1 in ``catalog``
    origin: tuple[int, int, int]  # global (v, y, x) of mask[0, 0, 0]
    unresolved: Table            # owned clumps the largest window could not settle
    summary: dict


# -- the model, once per worker ----------------------------------------------------------
class ModelPlugin(WorkerPlugin):
    """A dask ``WorkerPlugin`` that loads the verification checkpoint once per worker.

    The model goes to the worker's device (``'auto'``: CUDA where present; give GPU
    workers a resource, ``dask worker --resources GPU=1``, and the survey's tasks ask
    for it with ``gpu=True``).
    """

    name = PLUGIN_NAME
    idempotent = True

    def __init__(self, checkpoint: str, device: str = "auto", threads: int | None = None):
        self.checkpoint = os.fspath(checkpoint)
        self.device = device
        self.threads = threads
        self.model = None

    def setup(self, worker: Any = None) -> None:
        import torch

        from ..checkpoint import load_checkpoint

        if self.threads:
            torch.set_num_threads(int(self.threads))
        self.model, _ = load_checkpoint(self.checkpoint, device=self.device)

    def teardown(self, worker: Any = None) -> None:
        self.model = None


@lru_cache(maxsize=2)
def _local_model(checkpoint: str, device: str):
    from ..checkpoint import load_checkpoint

    return load_checkpoint(checkpoint, device=device)[0]


def _worker_model(checkpoint: str, device: str):
    """The worker plugin's model, or one loaded once per process outside dask."""
    try:
        from distributed import get_worker

        plugin = get_worker().plugins.get(PLUGIN_NAME)
    except (ImportError, ValueError):
        plugin = None
    if plugin is not None and plugin.checkpoint == checkpoint:
        if plugin.model is None:
            plugin.setup()
        return plugin.model
    return _local_model(checkpoint, device)


class PeakKeyedSamples(CandidateSamples):
    """Candidate samples whose background noise is keyed by the clump's global peak voxel.

    :class:`~glue_ssclump.core.samples.CandidateSamples` derives a sample's noise from
    ``(seed, clump_id)``; ids in a tile are local, so here the key is the flat index of
    the peak in the whole cube: the same clump gets the same sample in any tiling.
    """

    def __init__(self, data: np.ndarray, mask: np.ndarray, keys: np.ndarray,
                 **kwargs: Any) -> None:
        super().__init__(data, mask, **kwargs)
        self._draws = _noise_draws(self.seed, np.asarray(keys, dtype=np.int64),
                                   NOISE_BANK_SHAPE)


# -- detection ----------------------------------------------------------------------------
def _edge_rejected(method: str, mask: np.ndarray, origin: np.ndarray,
                   shape: tuple[int, ...], ids: np.ndarray) -> np.ndarray:
    """AllowEdge=0 in global coordinates: which ``ids`` the detector's edge test rejects.

    The test is applied here instead of in the window, whose faces are not the cube's.
    ClumpFind rejects a clump with a voxel on the cube's border; FellWalker (CUPID's
    test) one whose bounding box starts in the first two planes of an axis or ends in
    the last one.
    """
    name = get_detector(method).name.lower()
    out = np.zeros(ids.size, dtype=bool)
    boxes = ndi.find_objects(mask)
    for k, cid in enumerate(ids):
        box = boxes[int(cid) - 1]
        lo = np.array([sl.start for sl in box]) + origin
        hi = np.array([sl.stop - 1 for sl in box]) + origin
        n = np.asarray(shape)
        if name == "fellwalker":
            out[k] = bool(np.any(lo < 2) or np.any(hi >= n - 1))
        else:
            out[k] = bool(np.any(lo == 0) or np.any(hi == n - 1))
    return out


def _grow(window: tuple[tuple[int, int], ...] | None, boxes: list[tuple[slice, ...]],
          origin: np.ndarray, shape: tuple[int, ...], step: int
          ) -> tuple[tuple[int, int], ...]:
    """The boxes (window-local) in global voxels, grown by ``step`` (sky axes), clipped,
    united with ``window`` if given; the spectral axis stays whole."""
    lo = np.array([a for a, _ in window]) if window else np.array(shape)
    hi = np.array([b for _, b in window]) if window else np.zeros(3, dtype=np.int64)
    pad = np.array([0, step, step])
    for box in boxes:
        blo = np.array([sl.start for sl in box]) + origin - pad
        bhi = np.array([sl.stop for sl in box]) + origin + pad
        lo = np.minimum(lo, blo)
        hi = np.maximum(hi, bhi)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, np.asarray(shape))
    lo[0], hi[0] = 0, shape[0]
    return tuple((int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def _volume(box: tuple[tuple[int, int], ...]) -> int:
    return int(np.prod([b - a for a, b in box]))


def _peak_rss_mib() -> float:
    """This process's peak resident set size, MiB.

    Linux: ``VmHWM`` (the high-water mark of this process's own memory; ``ru_maxrss``
    can carry the parent's peak across fork + exec, as dask's spawned workers show).
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def process_tile(tile: Tile, settings: SurveySettings, out_path: str | None = None
                 ) -> dict:
    """Detect (and verify) one tile; write its result file when ``out_path`` is given.

    The detector runs on the tile's window; owned clumps that the window cannot settle
    (:mod:`.border`) are detected again in a window around their islands only (grown
    in doubling steps), until all are settled or the window would exceed
    ``max_window_factor`` first windows; those left are reported as unresolved.

    Parameters
    ----------
    tile : Tile
    settings : SurveySettings
    out_path : str, optional
        Where to write the result (``.npz``, atomically).

    Returns
    -------
    dict
        A small summary: tile name, clumps kept, clumps unresolved, windows used,
        seconds, the process's peak RSS (MiB).  With no ``out_path`` the
        :class:`TileResult` is under ``'result'``.
    """
    t0 = time.perf_counter()
    info = tile.cube
    det = get_detector(settings.method)
    resolved = det.resolve(settings.params, info.rms)
    rule = island_rule(settings.method, resolved)
    run_params = dict(settings.params)
    edge_test = "AllowEdge" in resolved and not resolved["AllowEdge"]
    if edge_test:
        run_params[det.param("AllowEdge").name] = True
    core = tuple(slice(a, b) for a, b in tile.core)
    first_volume = _volume(tile.window)
    limit = settings.max_window_factor * first_volume
    window = tile.window
    parts: list[tuple[Table, np.ndarray, np.ndarray]] = []  # (rows, local mask, origin)
    taken: set[tuple[int, int, int]] = set()
    pending = np.zeros((0, 3), dtype=np.int64)  # one voxel of each flagged island
    unresolved = np.zeros((0, 4), dtype=np.int64)
    windows, largest, t_detect = 0, 0, 0.0
    while True:
        windows += 1
        largest = max(largest, _volume(window))
        t1 = time.perf_counter()
        cube = read_window(info.path, info.hdu, window)
        origin = np.array([a for a, _ in window])
        if cube is None:
            break
        res = run_detector(cube.data, settings.method, info.rms, run_params)
        mask = res.mask
        cat = build_catalog(cube, mask, res.detector, info.rms, resolved)
        t_detect += time.perf_counter() - t1
        ids = np.asarray(cat["clump_id"], dtype=np.int64)
        peak = np.stack([np.asarray(cat[c], dtype=np.int64)
                         for c in ("peak_z", "peak_y", "peak_x")], axis=1) + origin
        isl = island_mask(cube.data, rule, mask)
        open_faces = tuple((window[a][0] > 0, window[a][1] < info.shape[a]) for a in range(3))
        unsettled = unsettled_islands(isl, rule, open_faces)
        # Islands that may hold clumps of this tile: in the first window those that reach
        # into the core (a clump cut below MinPix by the face has no row, but its island
        # still reaches the core); later, those holding a voxel of a flagged island.
        relevant = np.zeros(unsettled.size, dtype=bool)
        if windows == 1:
            local_core = tuple(slice(c.start - o, c.stop - o)
                               for c, o in zip(core, origin, strict=True))
            relevant[np.unique(isl[local_core])] = True
        else:
            relevant[isl[tuple((pending - origin).T)]] = True
        relevant[0] = False
        clump_island = isl.ravel()[_first_voxel(mask, ids)]
        owned = np.all((peak >= [c.start for c in core]) & (peak < [c.stop for c in core]),
                       axis=1)
        owned &= relevant[clump_island]
        owned &= np.array([tuple(p) not in taken for p in peak.tolist()], dtype=bool)
        settled = owned & ~unsettled[clump_island]
        keep = settled.copy()
        if edge_test and keep.any():
            keep[keep] = ~_edge_rejected(settings.method, mask, origin, info.shape,
                                         ids[keep])
        # A clump settled here is exact, so one settled in an earlier window is the same.
        taken.update(tuple(p) for p in peak[settled].tolist())
        if keep.any():
            parts.append(_kept_part(cat, mask, ids, keep, peak, origin))
        flagged = owned & ~settled
        unresolved = np.concatenate([peak[flagged], np.asarray(
            cat["npix"], dtype=np.int64)[flagged, None]], axis=1)
        grow = np.flatnonzero(relevant & unsettled)
        if grow.size == 0 or windows >= MAX_WINDOWS:
            break
        boxes = ndi.find_objects(isl)
        # Only the flagged islands are detected again, in a window around them grown in
        # geometric steps: an island that runs on for long (diffuse emission above the
        # lowest level) is reached in a few re-runs.
        step = max(settings.halo, 2 * rule.margin + 2) * 2 ** (windows - 1)
        grown = _grow(None, [boxes[i - 1] for i in grow], origin, info.shape, step)
        if _volume(grown) > limit:
            break
        pending = _island_voxels(isl, grow, boxes) + origin
        window = grown
    result = _assemble(tile, info, parts, unresolved)
    t_verify = 0.0
    if settings.verify and len(result.catalog):
        t2 = time.perf_counter()
        result.catalog = _verify(result, info, settings)
        t_verify = time.perf_counter() - t2
    result.summary = {
        "cube": info.path, "tile": tile.name, "index": tile.index,
        "clumps": len(result.catalog), "unresolved": len(result.unresolved),
        "windows": windows, "window_voxels": largest,
        "first_window_voxels": first_volume,
        "seconds": time.perf_counter() - t0, "detect_seconds": t_detect,
        "verify_seconds": t_verify, "peak_rss_mib": _peak_rss_mib(), "pid": os.getpid(),
    }
    summary = dict(result.summary)
    if out_path is not None:
        t3 = time.perf_counter()
        write_tile_result(out_path, result)
        summary["write_seconds"] = time.perf_counter() - t3
        summary["seconds"] = time.perf_counter() - t0
    else:
        summary["result"] = result
    return summary


def _first_voxel(mask: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Flat index of one voxel of each clump in ``ids``."""
    flat = mask.ravel()
    first = np.zeros(int(flat.max()) + 1 if flat.size else 1, dtype=np.int64)
    where = np.flatnonzero(flat > 0)
    first[flat[where][::-1]] = where[::-1]
    return first[ids]


def _island_voxels(isl: np.ndarray, which: np.ndarray, boxes: list) -> np.ndarray:
    """One voxel (window-local v, y, x) of each island in ``which``."""
    out = np.empty((which.size, 3), dtype=np.int64)
    for k, i in enumerate(which):
        box = boxes[i - 1]
        hit = np.argwhere(isl[box] == i)[0]
        out[k] = hit + [sl.start for sl in box]
    return out


def _kept_part(cat: Table, mask: np.ndarray, ids: np.ndarray, keep: np.ndarray,
               peak: np.ndarray, origin: np.ndarray) -> tuple[Table, np.ndarray, np.ndarray]:
    """The kept rows in global pixels and their voxels (values = row + 1), cropped."""
    rows = np.flatnonzero(keep)
    out = cat[rows]
    lut = np.zeros(int(mask.max()) + 1, dtype=np.int32)
    lut[ids[rows]] = np.arange(1, rows.size + 1, dtype=np.int32)
    local = lut[mask]
    nz = np.nonzero(local)
    lo = np.array([a.min() for a in nz])
    hi = np.array([a.max() + 1 for a in nz])
    crop = np.ascontiguousarray(local[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))])
    # Pixel columns in global voxels: integers shift exactly, centroids by a float add.
    for axis, name in ((2, "x"), (1, "y"), (0, "z")):
        out[f"peak_{name}"] = peak[rows, axis]
        col = out[f"cen_{name}"]
        unit = col.unit
        out[f"cen_{name}"] = np.asarray(col, dtype=np.float64) + float(origin[axis])
        out[f"cen_{name}"].unit = unit
    return out, crop, origin + lo


def _assemble(tile: Tile, info, parts: list, unresolved: np.ndarray) -> TileResult:
    """One catalogue and one mask crop (values = row + 1) from the windows' kept parts."""
    un = Table({"peak_x": unresolved[:, 2], "peak_y": unresolved[:, 1],
                "peak_z": unresolved[:, 0], "npix": unresolved[:, 3]})
    if not parts:
        return TileResult(catalog=Table(), mask=np.zeros((0, 0, 0), np.int32),
                          origin=(0, 0, 0), unresolved=un, summary={})
    lo = np.min([o for _, _, o in parts], axis=0)
    hi = np.max([o + np.asarray(c.shape) for _, c, o in parts], axis=0)
    crop = np.zeros(tuple(hi - lo), dtype=np.int32)
    offset = 0
    for rows, mask, origin in parts:
        box = tuple(slice(a, a + n) for a, n in zip(origin - lo, mask.shape, strict=True))
        on = mask > 0
        crop[box][on] = mask[on] + offset
        offset += len(rows)
    catalog = vstack([rows for rows, _, _ in parts], metadata_conflicts="silent")
    catalog.meta = dict(parts[0][0].meta)
    catalog["clump_id"] = np.arange(1, len(catalog) + 1, dtype=np.int64)
    catalog["tile"] = np.full(len(catalog), tile.name, dtype="U8")
    catalog.meta["source"] = info.path
    return TileResult(catalog=catalog, mask=crop, origin=tuple(int(v) for v in lo),
                      unresolved=un, summary={})


def _verify(result: TileResult, info, settings: SurveySettings) -> Table:
    from ..model import infer
    from ..verify import verify_catalog

    model = _worker_model(os.fspath(settings.verify), settings.device)
    # A sample needs only its clump's own box: read the crop's region of the cube.
    box = tuple((int(o), int(o) + n) for o, n in zip(result.origin, result.mask.shape,
                                                     strict=True))
    data = read_window(info.path, info.hdu, box).data
    cat = result.catalog
    keys = np.ravel_multi_index(
        tuple(np.asarray(cat[c], dtype=np.int64) for c in ("peak_z", "peak_y", "peak_x")),
        info.shape)
    lag1 = info.lag1 if np.isfinite(info.lag1) else None
    samples = PeakKeyedSamples(data, result.mask, keys,
                               clump_ids=np.asarray(cat["clump_id"], dtype=np.int64),
                               rms=info.rms, lag1=lag1, seed=0, cache=None)
    p, _ = infer(model, samples, batch_size=settings.batch_size)
    return verify_catalog(cat, p, settings.threshold, settings.band)


# -- result files -------------------------------------------------------------------------
def _table_arrays(prefix: str, table: Table) -> tuple[dict[str, np.ndarray], dict]:
    arrays, cols = {}, []
    for name in table.colnames:
        col = table[name]
        arrays[f"{prefix}{len(cols)}"] = np.asarray(col)
        cols.append({"name": name, "unit": str(col.unit) if col.unit is not None else None,
                     "description": col.description or ""})
    return arrays, {"columns": cols}


def _table_from(prefix: str, npz: Any, spec: dict) -> Table:
    table = Table()
    for k, col in enumerate(spec["columns"]):
        table[col["name"]] = npz[f"{prefix}{k}"]
        if col["unit"]:
            table[col["name"]].unit = col["unit"]
        table[col["name"]].description = col["description"] or None
    return table


def write_tile_result(path: str | os.PathLike, result: TileResult) -> Path:
    """Write a tile's result as one ``.npz`` file, atomically (never a partial file)."""
    cat_arrays, cat_spec = _table_arrays("cat_", result.catalog)
    un_arrays, un_spec = _table_arrays("un_", result.unresolved)
    meta = {"catalog": cat_spec, "unresolved": un_spec,
            "catalog_meta": dict(result.catalog.meta), "summary": result.summary,
            "origin": list(result.origin)}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        # The npz key stays "labels" so that tile files of earlier runs still resume.
        np.savez_compressed(fh, labels=result.mask,
                            meta=np.frombuffer(json.dumps(meta, default=float).encode(),
                                               dtype=np.uint8),
                            **cat_arrays, **un_arrays)
    return Path(path)


def read_tile_result(path: str | os.PathLike, with_mask: bool = True) -> TileResult:
    """Read a file written by :func:`write_tile_result`.

    With ``with_mask=False`` the mask crop is left on disk (``mask`` is then an empty
    array): merging reads the crops one at a time.
    """
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(bytes(npz["meta"]).decode())
        catalog = _table_from("cat_", npz, meta["catalog"])
        catalog.meta.update(meta["catalog_meta"])
        unresolved = _table_from("un_", npz, meta["unresolved"])
        mask = np.array(npz["labels"]) if with_mask else np.zeros((0, 0, 0), np.int32)
    return TileResult(catalog=catalog, mask=mask, origin=tuple(meta["origin"]),
                      unresolved=unresolved, summary=meta["summary"])
