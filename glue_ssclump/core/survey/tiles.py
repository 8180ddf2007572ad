"""Survey inputs: cube lists, per-cube noise statistics, tiles and windowed reads.

A tile is a *description* (:class:`Tile`): the file, the HDU, the tile's core (a
half-open box in global voxel coordinates that owns the clumps whose peak lies in it)
and the window actually read (the core plus a halo, clipped to the cube).  Workers
read only their window, through a memory-mapped FITS file (:func:`read_window`), and
turn it into a :class:`~glue_ssclump.core.cube.PPVCube` with the same conversions as
:func:`~glue_ssclump.core.cube.read_cube` (units to K, spectral axis to km/s) and a
WCS shifted to the window, so world coordinates are the cube's own.

Tiles split the two sky axes only; every window holds the whole spectral axis, so the
channel width (used by the catalogue) is the cube's.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from ..cube import CubeError, PPVCube, cube_from_array, estimate_rms
from ..errors import SSClumpError
from ..samples import noise_lag1

__all__ = [
    "CubeInfo",
    "SurveyInputError",
    "Tile",
    "cube_key",
    "expand_inputs",
    "inspect_cube",
    "plan_tiles",
    "read_window",
    "STATS_MAX_VOXELS",
]

#: The noise rms and lag-1 correlation of a cube are measured on at most this many
#: voxels (every k-th row of the sky, whole spectra); below it on the whole cube, so
#: a small cube gets exactly ``estimate_rms(cube.data)`` as ``ssclump detect`` does.
STATS_MAX_VOXELS = 8_000_000

#: Voxels read at once while measuring the noise (bounds a worker's memory).
_SLAB_VOXELS = 2_000_000


class SurveyInputError(SSClumpError):
    """A survey input (file, glob, tile or halo setting) cannot be used."""


@dataclass(frozen=True)
class CubeInfo:
    """What every tile of one cube needs to know about the whole cube.

    ``rms`` and ``lag1`` are measured once per cube (:func:`inspect_cube`) and passed
    to every tile: thresholds in rms units must mean the same K everywhere.
    """

    path: str
    hdu: int
    shape: tuple[int, int, int]
    rms: float
    lag1: float
    spectral_type: str
    channel_width: float
    v0: float
    frame: str
    key: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> CubeInfo:
        d = json.loads(text)
        d["shape"] = tuple(d["shape"])
        return cls(**d)


@dataclass(frozen=True)
class Tile:
    """One unit of survey work: a core box that owns clumps and the window read for it.

    Boxes are ``((v0, v1), (y0, y1), (x0, x1))`` half-open, in global voxels.
    """

    cube: CubeInfo
    index: int
    grid: tuple[int, int]
    core: tuple[tuple[int, int], ...]
    window: tuple[tuple[int, int], ...]

    @property
    def name(self) -> str:
        return f"t{self.grid[0]:03d}_{self.grid[1]:03d}"


def expand_inputs(items: list[str] | tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """Expand paths and globs, in the order given (each glob sorted), without repeats.

    Returns
    -------
    paths : list of str
        Existing files.
    missing : dict
        ``{item: message}`` for paths that do not exist and globs that match nothing;
        these are reported per input while the others are processed.
    """
    paths: list[str] = []
    missing: dict[str, str] = {}
    seen: set[str] = set()
    for item in items:
        item = os.fspath(item)
        if glob.has_magic(item):
            found = sorted(glob.glob(item))
            if not found:
                missing[item] = f"{item}: the pattern matches no file; check the glob"
        elif os.path.isfile(item):
            found = [item]
        elif os.path.isdir(item):
            missing[item] = (f"{item} is a folder; give the cubes inside it "
                             f"(e.g. '{os.path.join(item, '*.fits')}')")
            found = []
        else:
            missing[item] = f"{item}: no such file; check the path"
            found = []
        for path in found:
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                paths.append(path)
    return paths, missing


def cube_key(path: str) -> str:
    """A folder name for a cube: its stem plus a hash of its absolute path, size and mtime.

    A changed file gets a new key, so results of an older version are never reused.
    """
    st = os.stat(path)
    token = f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}"
    digest = hashlib.sha1(token.encode()).hexdigest()[:10]
    return f"{Path(path).stem}-{digest}"


def _image_hdu(hdul: fits.HDUList, path: str) -> int:
    for i, hdu in enumerate(hdul):
        if getattr(hdu, "is_image", False) and hdu.header.get("NAXIS", 0) >= 2 and (
                hdu.header.get("NAXIS1", 0) > 0):
            return i
    raise CubeError(f"{path} holds no image data; give a FITS file with a PPV cube")


def _numpy_shape(header: fits.Header) -> tuple[int, ...]:
    n = int(header.get("NAXIS", 0))
    return tuple(int(header[f"NAXIS{i}"]) for i in range(n, 0, -1))


def _window_header(header: fits.Header, box: tuple[tuple[int, int], ...]) -> fits.Header:
    """The header of a window ``box`` (numpy order v, y, x): NAXISn and CRPIXn shifted."""
    out = header.copy()
    (v0, v1), (y0, y1), (x0, x1) = box
    for axis, (lo, hi) in zip((3, 2, 1), ((v0, v1), (y0, y1), (x0, x1)), strict=True):
        out[f"NAXIS{axis}"] = hi - lo
        out[f"CRPIX{axis}"] = float(header.get(f"CRPIX{axis}", 0.0)) - lo
    return out


def _read_raw(hdu: Any, box: tuple[tuple[int, int], ...]) -> np.ndarray:
    """The window's values as stored (scaled), 3D or 4D with a length-1 Stokes axis."""
    sl = tuple(slice(lo, hi) for lo, hi in box)
    ndim = int(hdu.header["NAXIS"])
    if ndim == 4:
        return np.asarray(hdu.section[(slice(None),) + sl])
    return np.asarray(hdu.section[sl])


def read_window(path: str, hdu_index: int, box: tuple[tuple[int, int], ...]) -> PPVCube | None:
    """Read one window of a cube through a memory map.

    Parameters
    ----------
    path : str
        The FITS file.
    hdu_index : int
        The HDU holding the cube (:attr:`CubeInfo.hdu`).
    box : ((v0, v1), (y0, y1), (x0, x1))
        Half-open window, global voxels.

    Returns
    -------
    PPVCube or None
        The window in K with its own WCS (world coordinates equal the cube's), or
        ``None`` when every voxel of it is blank (a mosaic's empty corner).
    """
    with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
        hdu = hdul[hdu_index]
        raw = _read_raw(hdu, box)
        header = hdu.header.copy()
    if not np.isfinite(raw).any():
        return None
    return cube_from_array(raw, _window_header(header, box), source=path)


def inspect_cube(path: str, rms: float | None = None, *, need_lag1: bool = False
                 ) -> CubeInfo:
    """Check one survey cube and measure its noise, reading it slab by slab.

    Parameters
    ----------
    path : str
        A FITS cube.
    rms : float, optional
        The noise rms in K; default measured (:func:`~glue_ssclump.core.cube.
        estimate_rms`) on the whole cube, or on every k-th sky row (whole spectra) when
        it has more than :data:`STATS_MAX_VOXELS` voxels.
    need_lag1 : bool
        Also measure the noise's lag-1 velocity correlation (for verification samples).

    Returns
    -------
    CubeInfo

    Raises
    ------
    CubeError
        The file is not a usable PPV cube (a 2D image, no WCS, ...): the message says so.
    """
    if not os.path.isfile(path):
        raise SurveyInputError(f"{path}: no such file; check the path")
    try:
        hdul = fits.open(path, memmap=True, lazy_load_hdus=True)
    except OSError as exc:
        raise CubeError(f"{path} could not be read as FITS ({exc}); give a FITS cube") from None
    with hdul:
        index = _image_hdu(hdul, path)
        hdu = hdul[index]
        header = hdu.header.copy()
        shape = _numpy_shape(header)
        if len(shape) == 2:
            raise CubeError(f"{path}: this is a 2D image (shape {shape}), not a PPV cube; "
                            "remove it from the survey list or give its 3D cube")
        if len(shape) == 4 and shape[0] != 1:
            raise CubeError(f"{path}: 4D data of shape {shape} with {shape[0]} planes on "
                            "the 4th axis; give a 3D cube or one Stokes plane")
        if len(shape) not in (3, 4):
            raise CubeError(f"{path}: data have {len(shape)} axes; give a 3D PPV cube")
        shape3 = tuple(int(n) for n in shape[-3:])
        nv, ny, nx = shape3
        step = _row_step(shape3)
        # Contiguous blocks of rows (one memory-mapped read and one conversion each),
        # every `step`-th row kept: whole spectra, a bounded working set.
        block = max(step, (_SLAB_VOXELS // max(1, nv * nx)) // step * step)
        parts: list[np.ndarray] = []
        probe: PPVCube | None = None
        for y0 in range(0, ny, block):
            box = ((0, nv), (y0, min(ny, y0 + block)), (0, nx))
            raw = _read_raw(hdu, box)
            if not np.isfinite(raw).any():
                continue
            win = cube_from_array(raw, _window_header(header, box), source=path)
            probe = probe or win
            parts.append(np.ascontiguousarray(win.data[:, ::step]) if step > 1 else win.data)
        if probe is None:
            raise CubeError(f"{path}: every voxel is NaN/blank; check the file (wrong HDU, "
                            "or BLANK/scaling keywords)")
    sample = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
    del parts
    rms = float(rms) if rms is not None else estimate_rms(sample)
    lag1 = float(noise_lag1(sample, rms)) if need_lag1 else float("nan")
    return CubeInfo(path=os.fspath(path), hdu=index, shape=shape3, rms=rms, lag1=lag1,
                    spectral_type=probe.spectral_type,
                    channel_width=float(probe.channel_width),
                    v0=float(probe.velocity[0]), frame=probe.frame, key=cube_key(path))


def _row_step(shape: tuple[int, int, int]) -> int:
    """Keep every k-th sky row so that at most STATS_MAX_VOXELS voxels are measured."""
    return max(1, int(np.ceil(int(np.prod(shape)) / STATS_MAX_VOXELS)))


def check_spectral_axes(infos: list[CubeInfo], rtol: float = 1e-6) -> dict[str, str]:
    """Cubes whose spectral axis differs from the first cube's, with the reason.

    A survey catalogue mixes the cubes' velocities and sizes, so every cube must have
    the same spectral axis type and channel width (km/s) as the first one.
    """
    bad: dict[str, str] = {}
    if not infos:
        return bad
    ref = infos[0]
    for info in infos[1:]:
        if info.spectral_type != ref.spectral_type:
            bad[info.path] = (
                f"{info.path}: spectral axis {info.spectral_type} differs from the survey's "
                f"{ref.spectral_type} (first cube {ref.path}); regrid it to the survey's "
                "spectral axis or run it as its own survey")
        elif not np.isclose(info.channel_width, ref.channel_width, rtol=rtol, atol=0):
            bad[info.path] = (
                f"{info.path}: channel width {info.channel_width:.6g} km/s differs from the "
                f"survey's {ref.channel_width:.6g} km/s (first cube {ref.path}); regrid it "
                "to the survey's spectral axis or run it as its own survey")
    return bad


def plan_tiles(info: CubeInfo, tile: tuple[int, int], halo: int) -> list[Tile]:
    """Split a cube's sky into tiles of ``tile`` = (ny, nx) pixels with a ``halo``.

    Every tile holds the whole spectral axis.  Cores tile the cube without overlap
    (the last row / column of tiles may be smaller); windows are the cores grown by
    ``halo`` on each sky side, clipped to the cube.
    """
    ty, tx = (int(t) for t in tile)
    if ty < 1 or tx < 1:
        raise SurveyInputError(f"tile {tile} must be positive pixel counts, e.g. 256,256")
    if halo < 0:
        raise SurveyInputError(f"halo {halo} must be >= 0 pixels")
    nv, ny, nx = info.shape
    tiles: list[Tile] = []
    for iy, y0 in enumerate(range(0, ny, ty)):
        for ix, x0 in enumerate(range(0, nx, tx)):
            y1, x1 = min(ny, y0 + ty), min(nx, x0 + tx)
            core = ((0, nv), (y0, y1), (x0, x1))
            window = ((0, nv), (max(0, y0 - halo), min(ny, y1 + halo)),
                      (max(0, x0 - halo), min(nx, x1 + halo)))
            tiles.append(Tile(info, len(tiles), (iy, ix), core, window))
    return tiles
