"""Galaxy image + clump catalogue (Faster R-CNN, Popp et al.) as glue ``Data``.

The second system of glue-ssclump: clumps found in g,r,i galaxy images by
:func:`glue_ssclump.core.galaxy.detect_clumps`. Two datasets per image:

* the **image** (:func:`make_image_data`): ``luminance`` (grey, the default display),
  ``red`` / ``green`` / ``blue`` (the Lupton RGB the detector saw, uint8) and, for FITS input, ``g`` / ``r`` / ``i`` (float32), on one
  pixel grid with the image's celestial WCS (if any);
* the **clump catalogue** (:func:`make_clump_data`): a :class:`glue.core.data_region.
  RegionData` with one row per clump (the core's columns, ``verdict``) and one
  ``box`` region each (an ``ExtendedComponent`` of shapely polygons), so glue's image
  viewer draws the boxes and subsets of rows light up their boxes.

Pixel rows. The core's ``x`` / ``y`` are numpy column / row of the array as stored (row
0 = first FITS row, or top PNG row). glue's image viewer puts row 0 at the bottom and
glue's own PNG reader (``glue.core.data_factories.image.img_data``) flips PNG rows
(``np.flipud``) so photographs appear upright. This module does the same for PNG/JPEG
input (``meta['ssclump_rows_flipped']``): glue pixel y = ``ny - 1 - y`` there, and the
catalogue gets a ``y_up`` column (the row counted from the bottom) to link on. FITS
rows are not flipped (FITS row 0 is the bottom row already).

Region centres (what glue links and brushes on, see :mod:`.galaxy_links`): ``ra`` /
``dec`` when the image has an RA / Dec WCS (glue's image viewer then displays world
coordinates and region data must be in them; another frame, e.g. galactic, gets
``lon_image`` / ``lat_image`` columns in that frame); otherwise ``x`` / ``y`` (FITS) or
``x`` / ``y_up`` (PNG), linked to the image's pixel axes.

The factory's identifier claims only files it is sure of: a FITS file whose first image
HDU is 3 planes named g, r, i (``BANDS = 'g,r,i'``, ``BAND1..3`` or ``FILTER1..3``
keywords, or ``SSGALAXY = T``). It is registered with a priority below glue's own FITS and image
readers, so glue's automatic choice never runs a detector on a plain FITS or PNG; the
factory is used when chosen in File > Open Data or through
``load_data(path, factory=load_galaxy_clumps)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from astropy.table import Table
from astropy.wcs import WCS
from glue.core.component import CategoricalComponent, Component, ExtendedComponent
from glue.core.data import Data
from glue.core.data_collection import DataCollection
from glue.core.data_factories.helpers import data_label
from glue.core.data_region import RegionData

from ..core.progress import Progress, ensure_progress
from .factory import _PROGRESS, make_catalog_data
from .galaxy_verdicts import GALAXY_CATEGORIES, update_galaxy_subsets
from .pairing import KEY, META_GLUE_ONLY, META_ROLE, META_SOURCE
from .writeback import VERDICT

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # the galaxy core imports torch: loaded only when a galaxy is opened
    from ..core.galaxy import GalaxyImage

__all__ = [
    "BOX",
    "CLUMPS_ROLE",
    "GALAXY_FACTORY_LABEL",
    "IMAGE_ROLE",
    "attach_galaxy_clumps",
    "clump_boxes",
    "clump_data_for",
    "compute_galaxy_clumps",
    "galaxy_pairs",
    "image_data_for",
    "is_galaxy_file",
    "load_galaxy_clumps",
    "make_clump_data",
    "make_galaxy_pair",
    "make_image_data",
]

#: Label of the data factory in glue's "Open Data" file-type menu.
GALAXY_FACTORY_LABEL = "Galaxy image + clumps (Faster R-CNN)"
#: The ``ExtendedComponent`` of the clump catalogue holding one box polygon per clump.
BOX = "box"
#: Catalogue columns of images whose WCS is not RA / Dec: the centre in the WCS's frame.
LON_IMAGE, LAT_IMAGE = "lon_image", "lat_image"
#: First component of the image dataset: the mean of the RGB planes (shown by default).
LUMINANCE = "luminance"
#: Catalogue column of PNG/JPEG images: the row counted from the bottom (glue's pixel y).
Y_UP = "y_up"

# Data.meta keys (plain strings / numbers, so glue sessions save them); the ones the
# cube side uses too come from .pairing.
IMAGE_ROLE = "galaxy_image"
CLUMPS_ROLE = "galaxy_clumps"
META_IMAGE = "ssclump_image_uuid"  # catalogue: uuid of the image dataset
META_FLIPPED = "ssclump_rows_flipped"  # image: 1 if rows were flipped (PNG/JPEG)
META_NY = "ssclump_ny"
META_PSF = "ssclump_psf_fwhm_pix"
META_CENTRES = "ssclump_region_centres"  # catalogue: "ra,dec", "x,y", "x,y_up", ...

_RASTER = (".png", ".jpg", ".jpeg")
_BAND_KEYS = ("BAND", "FILTER")


# -- the identifier ------------------------------------------------------------------------


def is_galaxy_file(filename: str, **kwargs: Any) -> bool:
    """Identifier of the factory: a FITS file that says it holds g, r, i planes.

    True only for a FITS file whose first image HDU has 3 planes (``NAXIS3 = 3``) and
    ``BANDS = 'g,r,i'`` (what :func:`~glue_ssclump.core.galaxy.image.write_gri_fits`
    writes), ``SSGALAXY = T``, or band keywords (``BAND1..3`` / ``FILTER1..3``) naming
    g, r and i. Plain 2D FITS images, PPV cubes and PNG/JPEG files are left to glue's
    own readers (the factory is registered below them anyway).
    """
    name = str(filename).lower()
    if not name.endswith((".fits", ".fit", ".fts", ".fits.gz")):
        return False
    from astropy.io import fits

    try:
        with fits.open(filename, memmap=True, lazy_load_hdus=True) as hdul:
            for hdu in hdul:
                header = hdu.header
                if header.get("NAXIS", 0) == 0 or hdu.is_image is False:
                    continue
                if header.get("NAXIS") != 3 or header.get("NAXIS3") != 3:
                    return False
                if header.get("SSGALAXY") is True:
                    return True
                if str(header.get("BANDS", "")).replace(" ", "").lower() == "g,r,i":
                    return True
                for key in _BAND_KEYS:
                    bands = [str(header.get(f"{key}{i}", "")).strip().lower()
                             for i in (1, 2, 3)]
                    if bands == ["g", "r", "i"]:
                        return True
                return False
    except (OSError, ValueError):
        return False
    return False


# -- building Data ---------------------------------------------------------------------------


def _rows_flipped(image: GalaxyImage) -> bool:
    # RGB-only input is a PNG/JPEG (row 0 = top row): shown upright like glue's reader.
    path = getattr(image, "path", None)
    if path is not None and str(path).lower().endswith(_RASTER):
        return True
    return image.planes is None


def _celestial(wcs: Any) -> WCS | None:
    if isinstance(wcs, WCS) and wcs.has_celestial and wcs.naxis == 2:
        return wcs
    if isinstance(wcs, WCS) and wcs.has_celestial:
        return wcs.celestial
    return None


def make_image_data(image: GalaxyImage, label: str) -> Data:
    """The galaxy image as one glue ``Data`` (RGB planes and, for FITS, g, r, i).

    Parameters
    ----------
    image : GalaxyImage
        From :func:`glue_ssclump.core.galaxy.read_galaxy_image`.
    label : str
        Dataset label.

    Returns
    -------
    glue.core.data.Data
        ``luminance`` (mean of the RGB, shown by default), ``red`` / ``green`` /
        ``blue`` (uint8 Lupton RGB) and ``g`` / ``r`` / ``i``
        (float32) when the input had photometric planes; the celestial WCS as
        coordinates (none for PNG/JPEG). PNG/JPEG rows are flipped as glue's image
        reader does (see the module notes).
    """
    flipped = _rows_flipped(image)
    rgb = np.asarray(image.rgb)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"the galaxy image's RGB has shape {rgb.shape}; expected (ny, nx, 3)")
    if flipped:
        rgb = rgb[::-1]
    data = Data(label=label, coords=None if flipped else _celestial(image.wcs))
    # glue's image viewer shows one component per dataset (no RGB composite of one
    # dataset): the first, a grey version of what the detector saw, is the default.
    luminance = rgb[:, :, :3].astype(np.float32).mean(axis=2)
    data.add_component(Component(luminance), LUMINANCE)
    for k, name in enumerate(("red", "green", "blue")):
        data.add_component(Component(np.ascontiguousarray(rgb[:, :, k])), name)
    if image.planes is not None:
        planes = np.asarray(image.planes, dtype=np.float32)
        if flipped:
            planes = planes[:, ::-1]
        for k, name in enumerate(("g", "r", "i")):
            data.add_component(Component(np.ascontiguousarray(planes[k])), name)
    data.meta[META_ROLE] = IMAGE_ROLE
    data.meta[META_FLIPPED] = int(flipped)
    data.meta[META_NY] = int(rgb.shape[0])
    psf = getattr(image, "psf_fwhm_pix", None)
    if isinstance(psf, (int, float)) and np.isfinite(psf):
        data.meta[META_PSF] = float(psf)
    if getattr(image, "path", None):
        data.meta[META_SOURCE] = str(image.path)
    return data


def clump_boxes(table: Table, ny: int, flipped: bool, wcs: WCS | None = None) -> np.ndarray:
    """One shapely polygon per clump: its box in the region-centre coordinates.

    Box edges ``x_min .. x_max`` / ``y_min .. y_max`` are in the core's pixel
    convention (pixel centres at integers, the whole image spans ``-0.5 .. n - 0.5``),
    which is glue's too, so only flipped rows need converting.

    Parameters
    ----------
    table : astropy.table.Table
        The clump catalogue (``x_min``, ``y_min``, ``x_max``, ``y_max``).
    ny : int
        Image rows (for flipped PNG/JPEG rows).
    flipped : bool
        Rows are shown bottom-up (PNG/JPEG): glue y = ``ny - 1 - row``.
    wcs : WCS, optional
        Celestial WCS: corners become (ra, dec) in degrees, as glue displays world
        coordinates for images with a WCS.

    Returns
    -------
    ndarray of shapely.Polygon
    """
    x0, x1, y0, y1 = (np.asarray(table[name], dtype=float)
                      for name in ("x_min", "x_max", "y_min", "y_max"))
    if flipped:
        y0, y1 = ny - 1 - y1, ny - 1 - y0
    px = np.stack([x0, x1, x1, x0], axis=1)
    py = np.stack([y0, y0, y1, y1], axis=1)
    if wcs is not None:
        px, py = wcs.wcs_pix2world(px.ravel(), py.ravel(), 0)
        px, py = px.reshape(-1, 4), py.reshape(-1, 4)
    boxes = np.empty(len(table), dtype=object)
    for k in range(len(table)):
        boxes[k] = shapely.Polygon(np.column_stack([px[k], py[k]]))
    return boxes


def make_clump_data(table: Table, image_data: Data, label: str) -> RegionData:
    """The clump catalogue as a glue ``RegionData`` whose boxes glue can draw.

    Parameters
    ----------
    table : astropy.table.Table
        From :func:`~glue_ssclump.core.galaxy.detect_clumps` (``clump_id``, ``x``,
        ``y``, box corners, ``ra``, ``dec``, ``score``, ``class`` ...).
    image_data : Data
        The image dataset (from :func:`make_image_data`) the boxes belong to.
    label : str
        Dataset label.

    Returns
    -------
    glue.core.data_region.RegionData
        The table's columns (units kept), ``verdict`` (the detector's class unless the
        table has one), ``y_up`` for PNG/JPEG images, and ``box``.
    """
    missing = [c for c in (KEY, "x", "y", "x_min", "y_min", "x_max", "y_max")
               if c not in table.colnames]
    if missing:
        raise ValueError(f"the clump catalogue lacks columns {missing}; columns: "
                         f"{table.colnames}")
    flat = make_catalog_data(table, label)
    clumps = RegionData(label=label)
    for cid in flat.main_components:
        clumps.add_component(flat.get_component(cid), cid.label)
    clumps.meta.update(flat.meta)
    flipped = bool(image_data.meta.get(META_FLIPPED, 0))
    ny = int(image_data.meta.get(META_NY, image_data.shape[0]))
    wcs = image_data.coords if isinstance(image_data.coords, WCS) else None
    if wcs is not None:
        lon, lat = wcs.wcs_pix2world(np.asarray(table["x"], float),
                                     np.asarray(table["y"], float), 0)
        if wcs.wcs.lngtyp == "RA":
            centres = ("ra", "dec")
            if "ra" not in table.colnames or not np.isfinite(np.asarray(table["ra"])).all():
                # An image WCS but no sky positions in the table: compute them.
                for name, values in (("ra", lon), ("dec", lat)):
                    if name in table.colnames:
                        clumps.update_components({clumps.id[name]: values})
                    else:
                        clumps.add_component(Component(values, units="deg"), name)
        else:
            # glue displays the WCS's own frame (e.g. galactic); the table's ra / dec are
            # ICRS, so the centres are the WCS's longitude / latitude, for display only.
            centres = (LON_IMAGE, LAT_IMAGE)
            clumps.add_component(Component(lon, units="deg"), LON_IMAGE)
            clumps.add_component(Component(lat, units="deg"), LAT_IMAGE)
            clumps.meta[META_GLUE_ONLY] = f"{LON_IMAGE},{LAT_IMAGE}"
    elif flipped:
        centres = ("x", Y_UP)
        clumps.add_component(Component(ny - 1 - np.asarray(table["y"], dtype=float)), Y_UP)
        clumps.meta[META_GLUE_ONLY] = Y_UP
    else:
        centres = ("x", "y")
    if VERDICT not in table.colnames:
        clumps.add_component(CategoricalComponent(initial_verdicts(table),
                                                  categories=GALAXY_CATEGORIES), VERDICT)
    boxes = clump_boxes(table, ny, flipped, wcs)
    ext = ExtendedComponent(boxes, center_comp_ids=[clumps.id[centres[0]],
                                                    clumps.id[centres[1]]])
    clumps.add_component(ext, BOX)
    clumps.meta[META_ROLE] = CLUMPS_ROLE
    clumps.meta[META_IMAGE] = image_data.uuid
    clumps.meta[META_CENTRES] = ",".join(centres)
    if image_data.meta.get(META_SOURCE):
        clumps.meta[META_SOURCE] = image_data.meta[META_SOURCE]
    return clumps


def make_galaxy_pair(image: GalaxyImage, table: Table, name: str) -> tuple[Data, RegionData]:
    """The image dataset and its clump catalogue (initial verdicts from ``class``).

    Parameters
    ----------
    image : GalaxyImage
    table : astropy.table.Table
        The detections.
    name : str
        Label of the image dataset; the catalogue is "NAME clumps".

    Returns
    -------
    (Data, RegionData)
    """
    image_data = make_image_data(image, name)
    clumps = make_clump_data(table, image_data, f"{name} clumps")
    return image_data, clumps


# -- pairs in a data collection ---------------------------------------------------------------


def galaxy_pairs(data_collection: DataCollection) -> list[tuple[Data, RegionData]]:
    """``(image, clump catalogue)`` pairs made by glue-ssclump in a data collection."""
    by_uuid = {d.uuid: d for d in data_collection}
    pairs = []
    for data in data_collection:
        if data.meta.get(META_ROLE) == CLUMPS_ROLE:
            image = by_uuid.get(data.meta.get(META_IMAGE))
            if image is not None:
                pairs.append((image, data))
    return pairs


def clump_data_for(data_collection: DataCollection, image_data: Data) -> RegionData | None:
    """The clump catalogue of an image dataset (``None`` if none)."""
    return next((c for i, c in galaxy_pairs(data_collection) if i is image_data), None)


def image_data_for(data_collection: DataCollection, clump_data: Data) -> Data | None:
    """The image dataset a clump catalogue belongs to (``None`` if none)."""
    return next((i for i, c in galaxy_pairs(data_collection) if c is clump_data), None)


# -- the data factory and the worker-side call ----------------------------------------------------


def _paths(filename: str | os.PathLike, bands: Sequence[str] | None) -> list[str]:
    paths = [str(filename)]
    if bands:
        paths += [str(p) for p in bands]
    return paths


def compute_galaxy_clumps(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    score_min: float = 0.3,
    model: Any = None,
    progress: Progress | None = None,
) -> tuple[GalaxyImage, Table]:
    """Read a galaxy image and detect its clumps; touches no glue state.

    Safe to run in a worker thread; pass the result to :func:`attach_galaxy_clumps`
    (or :func:`make_galaxy_pair`) on the GUI thread.

    Parameters
    ----------
    paths : path or sequence of paths
        One 3-plane g,r,i FITS, three g, r, i FITS files, or one RGB PNG/JPEG (see
        :func:`~glue_ssclump.core.galaxy.read_galaxy_image`).
    score_min : float
        Lowest detection score kept.
    model : optional
        A fine-tuned detector (or checkpoint path); default: the shipped model.
    progress : Progress, optional
        Progress / cancellation.

    Returns
    -------
    image : GalaxyImage
    table : astropy.table.Table
        The clump catalogue.

    Raises
    ------
    GalaxyError
        Unreadable or unusable image (the message says how to fix it).
    """
    from ..core.galaxy import detect_clumps, read_galaxy_image

    progress = ensure_progress(progress)
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [str(p) for p in paths]
    image = read_galaxy_image(paths if len(paths) > 1 else paths[0])
    table = detect_clumps(image, model=model, score_min=float(score_min), progress=progress)
    return image, table


def load_galaxy_clumps(
    filename: str,
    bands: Sequence[str] | None = None,
    score_min: float = 0.3,
    model: str | None = None,
) -> list[Data]:
    """Data factory: read a galaxy image, detect clumps, return ``[image, clumps]``.

    Registered with glue as "Galaxy image + clumps (Faster R-CNN)". The links that
    make the boxes show in the image viewer and brushing work are added by
    :func:`glue_ssclump.integration.galaxy_links.link_galaxy` (glue runs the registered
    auto-linker when the datasets are added in the application). Progress and cancel
    come from :func:`glue_ssclump.integration.factory.use_progress`.

    Parameters
    ----------
    filename : str
        A 3-plane g,r,i FITS, an RGB PNG/JPEG, or the g-band FITS of three.
    bands : sequence of str, optional
        The r- and i-band FITS files when ``filename`` is the g band.
    score_min : float
        Lowest detection score kept.
    model : str, optional
        Path of a fine-tuned detector checkpoint; default: the shipped model.

    Returns
    -------
    list of glue.core.data.Data
        ``[image, clump catalogue]`` (only ``[image]`` when nothing was detected); a
        session saved without data re-runs this with the same keywords.

    Raises
    ------
    GalaxyError
        Unusable input (message names the problem and the fix).
    """
    progress = ensure_progress(_PROGRESS.get())
    image, table = compute_galaxy_clumps(_paths(filename, bands), score_min, model, progress)
    if len(table) == 0:
        # glue's viewers fail on a dataset of zero rows (Component.numeric reads row 0).
        log.warning("no clumps in %s at score >= %s: only the image is loaded", filename,
                    score_min)
        return [make_image_data(image, data_label(filename))]
    image_data, clumps = make_galaxy_pair(image, table, data_label(filename))
    return [image_data, clumps]


def attach_galaxy_clumps(
    data_collection: DataCollection,
    image: GalaxyImage,
    table: Table,
    image_data: Data | None = None,
    name: str | None = None,
) -> tuple[Data, RegionData | None]:
    """Put a detection into the session: the image (if new), its clumps, links, verdicts.

    A detection on an image dataset that already has a clump catalogue replaces that
    catalogue's rows (the old dataset is removed, a new one added: glue cannot change
    the number of rows of a dataset in place). No detection: no catalogue (glue's
    viewers fail on a dataset of zero rows), the image's old one is removed.

    Parameters
    ----------
    data_collection : DataCollection
    image : GalaxyImage
        What was detected on.
    table : astropy.table.Table
        The detections.
    image_data : Data, optional
        The image dataset already in the session; default: a new one is added.
    name : str, optional
        Label of a new image dataset; default from ``image.path``.

    Returns
    -------
    (Data, RegionData or None)
        The image dataset and the clump catalogue (both in ``data_collection``,
        linked, with the verdict subset groups); ``None`` for an empty detection.
    """
    from .galaxy_links import link_galaxy

    if image_data is None:
        name = name or (Path(str(image.path)).stem if getattr(image, "path", None)
                        else "galaxy")
        image_data = make_image_data(image, name)
        data_collection.append(image_data)
    elif image_data not in data_collection:
        raise ValueError(f"dataset {image_data.label!r} is not in this data collection")
    old = clump_data_for(data_collection, image_data)
    if old is not None:
        data_collection.remove(old)
    if len(table) == 0:
        return image_data, None
    clumps = make_clump_data(table, image_data, f"{image_data.label} clumps")
    data_collection.append(clumps)
    link_galaxy(data_collection, image_data, clumps)
    update_galaxy_subsets(data_collection, clumps)
    return image_data, clumps


def initial_verdicts(table: Table) -> np.ndarray:
    """The detector's verdict per clump: its ``class`` (``clump`` or ``odd``)."""
    if "class" in table.colnames:
        values = np.asarray(table["class"], dtype=str)
        return np.where(np.isin(values, ("clump", "odd")), values, "")
    return np.full(len(table), "clump")
