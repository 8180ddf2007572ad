"""Candidate catalogue from a mask, and the two-detector cross-match.

:func:`build_catalog` measures every candidate of a mask in one vectorised
pass over the labelled voxels (``np.bincount`` keyed by label; no Python loop over
candidates), so masks with tens of thousands of candidates take a second or so.

Columns (one row per candidate, ordered by ``clump_id``):

============  ===============  ===========================================================
column        unit             meaning
============  ===============  ===========================================================
clump_id                       the candidate's value in the mask
detector                       detector that produced the mask
peak_value    K                brightest voxel (cube unit if the cube is not in K)
peak_x/y/z    pix              0-based voxel of the peak (numpy ``data[z, y, x]``)
peak_lon/lat  deg              world position of the peak (RA/Dec or GLON/GLAT, see meta)
peak_vel      km / s           velocity of the peak channel
cen_x/y/z     pix              intensity-weighted centroid (0-based)
cen_lon/lat   deg              world position of the centroid
cen_vel       km / s           velocity of the centroid
size_x/y/z    pix              intensity-weighted rms size along each axis
size_lon/lat  arcsec           ``size_x`` / ``size_y`` times the pixel size
size_vel      km / s           ``size_z`` times the channel width
npix                           number of voxels
flux          K                sum of the voxel values
flux_int      K km arcsec2 / s ``flux`` x channel width x pixel area
snr_peak                       ``peak_value / rms``
touches_edge                   a voxel lies on the array border (any of the 6 faces) or
                               next to a NaN blank (6-connected)
============  ===============  ===========================================================

Weights: centroids and sizes use the voxel values clipped at 0 as weights, so noise
dips inside a candidate do not pull the centroid or give negative variances; a
candidate with no positive voxel falls back to uniform weights. NaN voxels inside a
mask count in ``npix`` but add nothing to ``flux`` and are never the peak. The peak is
the first brightest voxel in C (v, y, x) order.

Table ``meta``: ``frame``, ``lon_name`` / ``lat_name``, ``spectral_type``,
``detector``, ``params``, ``rms`` (K), ``source``, ``unit``, ``version``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.table import Table
from astropy.wcs.utils import proj_plane_pixel_scales

from ..version import __version__
from .atomic import write_atomic
from .cube import PPVCube
from .errors import SSClumpError
from .progress import Progress, ensure_progress

#: Columns, in order, with their units (None = dimensionless).
COLUMNS: tuple[tuple[str, str | None], ...] = (
    ("clump_id", None), ("detector", None), ("peak_value", "K"),
    ("peak_x", "pix"), ("peak_y", "pix"), ("peak_z", "pix"),
    ("peak_lon", "deg"), ("peak_lat", "deg"), ("peak_vel", "km / s"),
    ("cen_x", "pix"), ("cen_y", "pix"), ("cen_z", "pix"),
    ("cen_lon", "deg"), ("cen_lat", "deg"), ("cen_vel", "km / s"),
    ("size_x", "pix"), ("size_y", "pix"), ("size_z", "pix"),
    ("size_lon", "arcsec"), ("size_lat", "arcsec"), ("size_vel", "km / s"),
    ("npix", None), ("flux", "K"), ("flux_int", "K km arcsec2 / s"),
    ("snr_peak", None), ("touches_edge", None),
)


def build_catalog(
    cube: PPVCube,
    mask: np.ndarray,
    detector: str,
    rms: float,
    params: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> Table:
    """Measure every candidate of a mask.

    Parameters
    ----------
    cube : PPVCube
        The cube the mask was made from.
    mask : ndarray
        Integer mask of ``cube.shape``; 0 = background, each candidate one id > 0.
    detector : str
        Name of the detector (stored per row and in ``meta``).
    rms : float
        Noise rms in K, for ``snr_peak`` and ``meta``.
    params : mapping, optional
        Detector parameters, stored in ``meta['params']``.
    progress : Progress, optional
        Progress / cancellation.

    Returns
    -------
    astropy.table.Table
        One row per id present in ``mask``, ordered by ``clump_id``; columns and
        units in the module docstring.
    """
    progress = ensure_progress(progress)
    mask = np.asarray(mask)
    if mask.shape != cube.shape:
        raise ValueError(f"mask shape {mask.shape} does not match the cube {cube.shape}")
    if not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f"mask must be integer, got {mask.dtype}")
    progress.update(0.0, f"catalogue: {detector}")

    flat_mask = mask.ravel()
    idx = np.flatnonzero(flat_mask > 0)
    ids, lab = np.unique(flat_mask[idx], return_inverse=True)
    n = ids.size
    lab = lab.ravel()
    shape = mask.shape
    values = cube.data.ravel()[idx].astype(np.float64)
    z, y, x = np.unravel_index(idx, shape)
    progress.update(0.2)

    finite = np.isfinite(values)
    v0 = np.where(finite, values, 0.0)
    npix = np.bincount(lab, minlength=n)
    flux = np.bincount(lab, weights=v0, minlength=n)

    # Peak: sort by (label, -value), stable, so the first voxel of each group is the
    # brightest and ties go to the lowest flat index.
    key = np.where(finite, -values, np.inf)
    order = np.lexsort((key, lab))
    starts = np.concatenate(([0], np.cumsum(npix)[:-1])).astype(np.intp)
    peak_i = order[starts] if n else np.zeros(0, dtype=np.intp)
    peak_value = values[peak_i]
    peak_x, peak_y, peak_z = x[peak_i], y[peak_i], z[peak_i]
    progress.update(0.5)

    w = np.clip(v0, 0.0, None)
    wsum = np.bincount(lab, weights=w, minlength=n)
    uniform = wsum <= 0
    if uniform.any():
        w = np.where(uniform[lab], 1.0, w)
        wsum = np.bincount(lab, weights=w, minlength=n)
    cen = []
    size = []
    for coord in (x, y, z):
        c = np.bincount(lab, weights=w * coord, minlength=n) / wsum
        d = coord - c[lab]
        var = np.bincount(lab, weights=w * d * d, minlength=n) / wsum
        cen.append(c)
        size.append(np.sqrt(np.clip(var, 0.0, None)))
    progress.update(0.8)

    edge = _edge_voxels(cube.data, z, y, x, finite)
    touches = np.bincount(lab, weights=edge, minlength=n) > 0

    peak_lon, peak_lat, peak_vel = cube.pixel_to_world(peak_x, peak_y, peak_z)
    cen_lon, cen_lat, cen_vel = cube.pixel_to_world(cen[0], cen[1], cen[2])
    scales = proj_plane_pixel_scales(cube.wcs.celestial) * 3600.0  # arcsec / pixel
    dv = cube.channel_width
    pix_area = float(abs(scales[0] * scales[1]))

    columns = {
        "clump_id": ids.astype(np.int64),
        "detector": np.full(n, detector, dtype=f"U{max(len(detector), 1)}"),
        "peak_value": peak_value,
        "peak_x": peak_x.astype(np.int64),
        "peak_y": peak_y.astype(np.int64),
        "peak_z": peak_z.astype(np.int64),
        "peak_lon": peak_lon, "peak_lat": peak_lat, "peak_vel": peak_vel,
        "cen_x": cen[0], "cen_y": cen[1], "cen_z": cen[2],
        "cen_lon": cen_lon, "cen_lat": cen_lat, "cen_vel": cen_vel,
        "size_x": size[0], "size_y": size[1], "size_z": size[2],
        "size_lon": size[0] * scales[0], "size_lat": size[1] * scales[1],
        "size_vel": size[2] * dv,
        "npix": npix.astype(np.int64),
        "flux": flux,
        "flux_int": flux * dv * pix_area,
        "snr_peak": peak_value / rms if rms > 0 else np.full(n, np.nan),
        "touches_edge": touches,
    }
    table = Table()
    data_unit = u.Unit(cube.unit)
    for name, unit in COLUMNS:
        col = np.asarray(columns[name])
        if unit is None:
            table[name] = col
            continue
        q = u.Unit(unit)
        if data_unit != u.K and unit.startswith("K"):
            q = q / u.K * data_unit  # a cube left in Jy/beam keeps its unit
        table[name] = col * q
    lon_name, lat_name = cube.lon_lat_names
    table["peak_lon"].description = f"{lon_name} of the peak ({cube.frame})"
    table["peak_lat"].description = f"{lat_name} of the peak ({cube.frame})"
    table["cen_lon"].description = f"{lon_name} of the centroid ({cube.frame})"
    table["cen_lat"].description = f"{lat_name} of the centroid ({cube.frame})"
    table.meta.update(
        frame=cube.frame,
        lon_name=lon_name,
        lat_name=lat_name,
        spectral_type=cube.spectral_type,
        detector=detector,
        params=dict(params or {}),
        rms=float(rms),
        unit=cube.unit,
        source=cube.source or "",
        version=__version__,
    )
    progress.update(1.0, f"catalogue: {n} candidates")
    return table


def _edge_voxels(
    data: np.ndarray, z: np.ndarray, y: np.ndarray, x: np.ndarray, finite: np.ndarray
) -> np.ndarray:
    """Per labelled voxel: on the array border, NaN itself, or 6-adjacent to a NaN."""
    nz, ny, nx = data.shape
    edge = ~finite
    edge |= (z == 0) | (z == nz - 1) | (y == 0) | (y == ny - 1) | (x == 0) | (x == nx - 1)
    blank = ~np.isfinite(data)
    if blank.any():
        for axis, coord, n in ((0, z, nz), (1, y, ny), (2, x, nx)):
            for step in (-1, 1):
                nb = coord + step
                ok = (nb >= 0) & (nb < n)
                pos = [z, y, x]
                pos[axis] = np.clip(nb, 0, n - 1)
                edge |= ok & blank[pos[0], pos[1], pos[2]]
    return edge.astype(np.float64)


def crossmatch(
    cat_a: Table,
    mask_a: np.ndarray,
    cat_b: Table,
    mask_b: np.ndarray,
    *,
    min_overlap: float = 0.5,
) -> Table:
    """Mark the candidates of ``cat_a`` that detector B found too.

    A candidate ``a`` matches ``b`` (the paper's high-confidence rule) when they share
    the same peak voxel, or when the voxels they share are at least ``min_overlap`` of
    the smaller of the two. When several ``b`` qualify, a same-peak one wins, then the
    one with the most shared voxels.

    Parameters
    ----------
    cat_a, cat_b : Table
        Catalogues from :func:`build_catalog` (``clump_id``, ``peak_x/y/z``, ``detector``).
    mask_a, mask_b : ndarray
        Their masks (same shape).
    min_overlap : float
        Shared-voxel fraction of the smaller candidate needed for a match.

    Returns
    -------
    Table
        A copy of ``cat_a`` with ``matched_by`` (B's detector name, or ``''``),
        ``match_id`` (B's ``clump_id``, 0 if none) and ``n_detectors`` (1 or 2);
        these columns are replaced if ``cat_a`` already has them.
    """
    mask_a = np.asarray(mask_a)
    mask_b = np.asarray(mask_b)
    if mask_a.shape != mask_b.shape:
        raise ValueError(f"masks differ in shape: {mask_a.shape} vs {mask_b.shape}")
    name_b = str(cat_b.meta.get("detector") or (cat_b["detector"][0] if len(cat_b) else "b"))

    fa = mask_a.ravel()
    fb = mask_b.ravel()
    both = np.flatnonzero((fa > 0) & (fb > 0))
    ida = np.asarray(cat_a["clump_id"], dtype=np.int64)
    idb = np.asarray(cat_b["clump_id"], dtype=np.int64)
    match = np.zeros(len(cat_a), dtype=np.int64)

    if both.size and len(cat_a) and len(cat_b):
        pa = fa[both].astype(np.int64)
        pb = fb[both].astype(np.int64)
        nb = int(max(pb.max(), idb.max() if idb.size else 0)) + 1
        pairs, shared = np.unique(pa * nb + pb, return_counts=True)
        a_of, b_of = pairs // nb, pairs % nb
        size_a = np.bincount(fa[fa > 0], minlength=int(a_of.max()) + 1)
        size_b = np.bincount(fb[fb > 0], minlength=nb)
        frac = shared / np.minimum(size_a[a_of], size_b[b_of])

        size = max(int(a_of.max()), int(b_of.max()), int(ida.max()), int(idb.max())) + 1
        peak_a = _lookup(ida, _peak_flat(cat_a, mask_a.shape), size)
        peak_b = _lookup(idb, _peak_flat(cat_b, mask_b.shape), size)
        same_peak = (peak_a[a_of] == peak_b[b_of]) & (peak_a[a_of] >= 0)

        good = same_peak | (frac >= min_overlap)
        a_of, b_of, shared, same_peak = a_of[good], b_of[good], shared[good], same_peak[good]
        order = np.lexsort((-shared, ~same_peak, a_of))
        a_sorted = a_of[order]
        first = np.ones(a_sorted.size, dtype=bool)
        first[1:] = a_sorted[1:] != a_sorted[:-1]
        best_a, best_b = a_sorted[first], b_of[order][first]
        row = _lookup(ida, np.arange(ida.size), size)[best_a]
        keep = row >= 0
        match[row[keep]] = best_b[keep]

    out = cat_a.copy()
    for col in ("matched_by", "match_id", "n_detectors"):
        if col in out.colnames:
            out.remove_column(col)
    matched = match > 0
    out["matched_by"] = np.where(matched, name_b, "").astype(f"U{max(len(name_b), 1)}")
    out["match_id"] = match
    out["n_detectors"] = 1 + matched.astype(np.int64)
    out.meta["crossmatch"] = {"with": name_b, "min_overlap": float(min_overlap),
                              "n_matched": int(matched.sum())}
    return out


def _peak_flat(cat: Table, shape: tuple[int, ...]) -> np.ndarray:
    """Flat index of each row's peak voxel."""
    zyx = [np.asarray(cat[c], dtype=np.int64) for c in ("peak_z", "peak_y", "peak_x")]
    return np.ravel_multi_index(zyx, shape)


def _lookup(ids: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Array of length ``size`` indexed by clump id holding ``values`` (-1 where no row)."""
    lut = np.full(size, -1, dtype=np.int64)
    lut[ids] = values
    return lut


# -- files ------------------------------------------------------------------------------

#: Catalogue file formats by suffix (astropy's format names).
CATALOG_FORMATS = {".fits": "fits", ".fit": "fits", ".ecsv": "ascii.ecsv",
                   ".xml": "votable", ".vot": "votable", ".votable": "votable"}


class CatalogError(SSClumpError):
    """A catalogue or mask file that cannot be used (message: problem and fix)."""


def _format_for(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    try:
        return CATALOG_FORMATS[path.suffix.lower()]
    except KeyError:
        raise CatalogError(f"cannot tell the catalogue format of {path.name}: use one of "
                           f"{', '.join(sorted(CATALOG_FORMATS))}") from None


def write_catalog(catalog: Table, path: str | Path, fmt: str | None = None,
                  overwrite: bool = True) -> Path:
    """Write a catalogue as FITS, ECSV or VOTable (by suffix), keeping units and meta.

    FITS headers cannot hold nested metadata (detector parameters, cross-match
    settings) or long keywords: those are stored as one JSON string, ``METAJSON``, that
    :func:`read_catalog` unpacks again.  ECSV keeps the metadata as it is; VOTable keeps
    columns and units (astropy writes no table metadata there).  The write is atomic
    (:func:`~glue_ssclump.core.atomic.write_atomic`): an interrupted write never destroys
    the catalogue (and the manual labels in it) that was there before.
    """
    path = Path(path)
    fmt = _format_for(path, fmt)
    out = catalog.copy(copy_data=False)
    if fmt == "fits":
        packed = {k: v for k, v in out.meta.items()
                  if isinstance(v, (dict, list, tuple)) or len(k) > 8}
        for key in packed:
            del out.meta[key]
        if packed:
            out.meta["METAJSON"] = json.dumps(packed, default=float)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    return write_atomic(path, lambda tmp: out.write(tmp, format=fmt, overwrite=True))


def read_catalog(path: str | Path, fmt: str | None = None) -> Table:
    """Read a catalogue written by :func:`write_catalog` (nested metadata restored).

    Raises
    ------
    CatalogError
        The file is missing, unreadable, not a table, or has no integer ``clump_id``
        column with unique values.
    """
    path = Path(path)
    if not path.is_file():
        what = ("is a folder, not a catalogue file" if path.is_dir()
                else "is not a regular file (a pipe or device)" if path.exists()
                else "does not exist")
        raise CatalogError(f"catalogue {path} {what}; run `ssclump detect CUBE --out DIR` "
                           "to make DIR/catalog.fits, or check the path")
    fmt = _format_for(path, fmt)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy warns about unknown units, keywords
            table = Table.read(path, format=fmt)
    except Exception as exc:  # noqa: BLE001 - astropy raises many kinds for broken files
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
        raise CatalogError(f"{path} is not a readable {fmt} table ({reason}); write it again "
                           "with `ssclump detect` (or copy it again if it was damaged)") from None
    table.convert_bytestring_to_unicode()  # FITS string columns come back as bytes
    blob = None
    for key in list(table.meta):
        if key.upper() == "METAJSON":
            blob = table.meta.pop(key)
    if blob:
        try:
            extra = json.loads(blob)
        except (TypeError, ValueError):
            extra = None
        if not isinstance(extra, dict):
            raise CatalogError(f"{path}: the METAJSON header keyword is not a JSON object; "
                               "delete the keyword or write the catalogue again")
        table.meta.update(extra)
    # FITS upper-cases header keywords: bring ours back to the names build_catalog uses.
    for key in list(table.meta):
        if key.isupper() and key.lower() in _META_KEYS:
            table.meta[key.lower()] = table.meta.pop(key)
    check_catalog(table, str(path))
    return table


def check_catalog(table: Table, name: str = "the catalogue") -> None:
    """Require an integer, positive, unique ``clump_id`` column.

    Raises
    ------
    CatalogError
        With the problem and the fix.
    """
    if "clump_id" not in table.colnames:
        raise CatalogError(
            f"{name} has no 'clump_id' column (columns: {table.colnames[:8]}); give the "
            "catalogue written with the mask (ssclump detect), whose clump_id values are the "
            "mask's candidate ids")
    ids = np.asarray(table["clump_id"])
    if np.ma.is_masked(table["clump_id"]) or ids.dtype.kind not in "iu":
        raise CatalogError(f"{name}: clump_id is not an integer column (type {ids.dtype}); "
                           "give the catalogue written with the mask")
    if ids.size and ids.min() < 1:
        raise CatalogError(f"{name}: clump_id {int(ids.min())} is not a candidate id (ids "
                           "start at 1; 0 is background); give the catalogue written with "
                           "the mask")
    if np.unique(ids).size != ids.size:
        raise CatalogError(f"{name}: clump_id values repeat; every candidate must be one row "
                           "- give the catalogue written with the mask")


def read_mask(path: str | Path, cube: PPVCube | None = None,
              catalog: Table | None = None) -> np.ndarray:
    """Read an integer mask (``mask.fits``) and check it against its cube / catalogue.

    Parameters
    ----------
    path : str or Path
        The mask FITS file (int, 0 = background, candidate ids > 0).
    cube : PPVCube, optional
        The cube it was made from: shape and celestial / spectral grid must match.
    catalog : Table, optional
        Its catalogue: every catalogue ``clump_id`` must be in the mask.

    Returns
    -------
    ndarray
        int32 ``(v, y, x)``.

    Raises
    ------
    CatalogError
        Unreadable file, not an integer 3D mask, negative or huge ids, a shape or grid
        other than the cube's, catalogue ids missing from the mask.
    """
    from astropy.io import fits

    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"mask {path} does not exist; run `ssclump detect CUBE --out DIR` "
                           "to make DIR/mask.fits, or check the path")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, memmap=False) as hdul:
                hdu = next((h for h in hdul if getattr(h, "is_image", False)
                            and h.data is not None), None)
                if hdu is None:
                    raise CatalogError(f"{path} holds no image; give the mask.fits written by "
                                       "ssclump detect")
                mask, header = np.array(hdu.data), hdu.header.copy()
    except CatalogError:
        raise
    except Exception as exc:  # noqa: BLE001 - astropy raises many kinds for broken files
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
        raise CatalogError(f"{path} is not a readable FITS mask ({reason}); run ssclump detect "
                           "again to rewrite it") from None
    check_mask(mask, str(path), cube=cube, catalog=catalog, header=header)
    return mask.astype(np.int32)


def check_mask(mask: np.ndarray, name: str = "the mask", cube: PPVCube | None = None,
               catalog: Table | None = None, header: Any = None) -> None:
    """Check a mask (see :func:`read_mask`); raises :class:`CatalogError`."""
    mask = np.asarray(mask)
    redo = "run ssclump detect on the cube again to rewrite the mask"
    if mask.ndim != 3:
        raise CatalogError(f"{name} has {mask.ndim} axes (shape {mask.shape}); a mask "
                           f"has the cube's 3 (v, y, x) - {redo}")
    if mask.dtype.kind not in "iu":
        if mask.dtype.kind != "f" or not np.all(np.isfinite(mask)) \
                or not np.array_equal(mask, np.round(mask)):
            raise CatalogError(f"{name} holds non-integer values (type {mask.dtype}); a mask "
                               f"holds candidate ids - {redo}")
        mask = mask.astype(np.int64)  # whole numbers stored as floats: use them as ids
    if cube is not None and mask.shape != cube.shape:
        raise CatalogError(f"{name} has shape {mask.shape} but the cube has {cube.shape}; pass "
                           "the cube that was detected (the one the mask was made from)")
    if mask.size:
        lo, hi = mask.min(), mask.max()
        if lo < 0:
            raise CatalogError(f"{name} holds negative id {int(lo)}; ids are 0 (background) or "
                               f"positive - {redo}")
        # Ids index per-candidate tables: an id beyond the voxel count means a mask from a
        # tool with sparse ids, which would cost memory in proportion to the id.
        if hi > max(mask.size, 2**16):
            raise CatalogError(f"{name} holds id {int(hi)}, more than its {mask.size} voxels; "
                               "renumber the candidates 1..N (with the catalogue's clump_id), "
                               f"or {redo}")
    if cube is not None and header is not None:
        _check_mask_grid(header, cube, name)
    if catalog is not None:
        check_catalog(catalog)
        present = np.zeros(int(mask.max(initial=0)) + 1, dtype=bool)
        present[np.unique(mask)] = True
        ids = np.asarray(catalog["clump_id"], dtype=np.int64)
        missing = ids[(ids >= present.size) | ~present[np.minimum(ids, present.size - 1)]]
        if missing.size:
            raise CatalogError(f"{missing.size} catalogue clump_id(s) are not in {name} (e.g. "
                               f"{missing[:5].tolist()}); use the catalogue and mask written "
                               "together by one ssclump detect run")


def _check_mask_grid(header: Any, cube: PPVCube, name: str) -> None:
    """The mask's WCS must put its voxels where the cube's are (within 1% of a pixel)."""
    from astropy.wcs import WCS

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(header, naxis=3)
            corners = np.array([[0, 0, 0], [s - 1 for s in cube.shape[::-1]]], dtype=float)
            mine = wcs.all_pix2world(corners, 0)
            theirs = cube.wcs.all_pix2world(corners, 0)
    except Exception:  # noqa: BLE001 - no usable WCS in the mask: nothing to compare
        return
    if wcs.wcs.naxis < 3 or not np.isfinite(mine).all() or not wcs.has_celestial:
        return
    # Per axis, within 1% of the cube's pixel step (wcslib gives both in SI units).
    cube_step = np.abs(cube.wcs.all_pix2world(corners + 1, 0) - theirs)
    if not np.all(np.abs(mine - theirs) <= 0.01 * cube_step + 1e-9):
        raise CatalogError(f"{name} lies on another grid than the cube (its WCS puts the "
                           "corner voxels elsewhere); pass the cube that was detected (the one the "
                           "mask was made from)")


_META_KEYS = {"frame", "lon_name", "lat_name", "spectral_type", "detector", "rms", "unit",
              "source", "version", "threshold", "uncertain_band"}
