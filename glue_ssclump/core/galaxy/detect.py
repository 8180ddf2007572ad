"""Clump catalogues from galaxy images: the Faster R-CNN and a classical baseline.

:func:`detect_clumps` runs the detector on the image's RGB, then the paper's
post-processing (:mod:`.postprocess`) and photometry (:mod:`.photometry`).
:func:`baseline_clumps` is the classical comparison: photutils ``DAOStarFinder`` on the
r band minus a median-filtered smooth galaxy model, a g - r colour cut for 'odd'
sources (foreground stars are redder than star-forming clumps), and the same
post-processing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from astropy.table import Table

from ..device import resolve_device
from ..progress import Progress, ensure_progress
from .image import GalaxyError, GalaxyImage, noise_sigma
from .model import GalaxyModel, load_default_model, load_galaxy_checkpoint
from .photometry import aperture_fluxes, flux_ratios
from .postprocess import (
    NMS_IOU,
    Candidates,
    class_agnostic_nms,
    host_mask,
    inside_mask,
    merge_close,
)
from .synth import CLASS_NAMES
from .train import to_tensor

__all__ = ["detect_clumps", "baseline_clumps", "raw_predictions", "baseline_raw",
           "postprocess", "catalogue", "resolve_model", "SCORE_MIN", "BASELINE_ODD_G_R"]

SCORE_MIN = 0.3
#: g - r (mag, instrumental) above which the baseline calls a source 'odd' (a star)
BASELINE_ODD_G_R = 0.5

_COLUMNS = ("clump_id", "x", "y", "x_min", "y_min", "x_max", "y_max", "ra", "dec", "score",
            "class", "class_id", "flux_ratio")


def resolve_model(model: GalaxyModel | str | os.PathLike | None,
                  device: str | torch.device = "auto") -> GalaxyModel:
    """A :class:`GalaxyModel` from a model, a checkpoint path, or None (the default)."""
    if model is None:
        return load_default_model(device=device)
    if isinstance(model, (str, os.PathLike)):
        return load_galaxy_checkpoint(Path(model), device=device)
    if isinstance(model, GalaxyModel):
        return model
    raise GalaxyError(f"model must be a GalaxyModel, a checkpoint path or None, "
                      f"not {type(model).__name__}")


def raw_predictions(model: GalaxyModel, image: GalaxyImage) -> Candidates:
    """The network's detections (torchvision's own per-class NMS at 0.5 and score >= 0.05
    applied), before the paper's post-processing."""
    net = model.net
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = net([to_tensor(image.rgb).to(model.device)])[0]
    finally:
        net.train(was_training)
    return Candidates(out["boxes"].cpu().numpy(), out["scores"].cpu().numpy(),
                      out["labels"].cpu().numpy())


def postprocess(raw: Candidates, image: GalaxyImage, score_min: float = SCORE_MIN,
                nms_iou: float = NMS_IOU, merge: bool = True,
                host: np.ndarray | None | bool = None) -> Candidates:
    """Score cut, class-agnostic NMS, FWHM merge and host cut (pass ``host=False`` to
    skip the cut, or a precomputed :func:`~.postprocess.host_mask`)."""
    cands = class_agnostic_nms(raw.above(score_min), nms_iou)
    if merge:
        cands = merge_close(cands, image.psf_fwhm_pix)
    if host is False:
        return cands
    if host is None or host is True:
        host = host_mask(image)
    return inside_mask(cands, np.asarray(host, dtype=bool))


def catalogue(cands: Candidates, image: GalaxyImage, host: np.ndarray | None = None,
              meta: dict | None = None) -> Table:
    """The clump catalogue (columns and units as in ``docs/galaxy.md``) of ``cands``."""
    n = len(cands)
    order = np.argsort(-cands.scores, kind="stable")
    cands = cands.take(order)
    t = Table()
    t["clump_id"] = np.arange(1, n + 1, dtype=np.int64)
    t["x"], t["y"] = cands.x, cands.y
    for j, name in enumerate(("x_min", "y_min", "x_max", "y_max")):
        t[name] = cands.boxes[:, j]
    for name in ("x", "y", "x_min", "y_min", "x_max", "y_max"):
        t[name].unit = "pix"
    ra = np.full(n, np.nan)
    dec = np.full(n, np.nan)
    if image.wcs is not None and n:
        world = image.wcs.pixel_to_world(cands.x, cands.y)
        icrs = world.icrs
        ra, dec = np.asarray(icrs.ra.deg, dtype=np.float64), np.asarray(icrs.dec.deg,
                                                                          dtype=np.float64)
    t["ra"], t["dec"] = ra, dec
    t["ra"].unit = t["dec"].unit = "deg"
    t["score"] = cands.scores
    t["score"].unit = ""
    t["class"] = np.array([CLASS_NAMES.get(int(k), "clump") for k in cands.labels], dtype="U5")
    t["class_id"] = cands.labels.astype(np.int64)
    t["class_id"].unit = t["class"].unit = ""
    if image.planes is not None and n:
        if host is None:
            host = host_mask(image)
        ratio = flux_ratios(image.planes[1], cands.x, cands.y, image.psf_fwhm_pix, host)
    else:
        ratio = np.full(n, np.nan)
    t["flux_ratio"] = ratio
    t["flux_ratio"].unit = ""
    t["flux_ratio"].description = "r-band clump / host flux (1.125 FWHM aperture, 3-5 FWHM annulus)"
    t["score"].description = "detection score"
    t.meta.update(psf_fwhm_pix=float(image.psf_fwhm_pix), image=image.path,
                  pixel_convention="x, y: 0-based numpy column, row of the array as stored "
                                   "(row 0 = first FITS row / top PNG row)")
    t.meta.update(meta or {})
    return t


def detect_clumps(image: GalaxyImage, model: GalaxyModel | str | os.PathLike | None = None,
                  score_min: float = SCORE_MIN, progress: Progress | None = None,
                  device: str | torch.device = "auto", *, nms_iou: float = NMS_IOU,
                  merge: bool = True, host_cut: bool = True) -> Table:
    """Find clumps in one galaxy image.

    Parameters
    ----------
    image : GalaxyImage
        From :func:`~.image.read_galaxy_image` (FITS g, r, i or RGB PNG / JPEG).
    model : GalaxyModel, path or None
        The detector; None loads the shipped default (trained on synthetic galaxies).
    score_min : float
        Detection score threshold (the paper's 0.3).
    progress : Progress, optional
        Stages reported; cancelling raises ``Cancelled`` between stages.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` (when ``model`` is loaded here).
    nms_iou, merge, host_cut :
        The post-processing steps (default: the paper's).

    Returns
    -------
    Table
        ``clump_id`` (1..n by decreasing score), ``x``, ``y`` (pix), ``x_min``, ``y_min``,
        ``x_max``, ``y_max`` (pix), ``ra``, ``dec`` (deg, NaN without a WCS), ``score``,
        ``class`` ('clump' / 'odd'), ``class_id`` (1 / 2), ``flux_ratio`` (NaN for an
        RGB-only image).  ``meta``: ``psf_fwhm_pix``, ``model`` (arch, path, version),
        ``score_min``, ``nms_iou``, ``method``.
    """
    progress = ensure_progress(progress)
    progress.update(0.0, "loading the model")
    gm = resolve_model(model, device)
    if model is not None and not isinstance(model, GalaxyModel):
        gm.to(resolve_device(device))
    progress.update(0.2, "running the detector")
    raw = raw_predictions(gm, image)
    progress.update(0.7, "post-processing")
    host = host_mask(image) if host_cut else None
    cands = postprocess(raw, image, score_min, nms_iou, merge,
                        host if host_cut else False)
    meta = {
        "method": "faster_rcnn", "score_min": float(score_min), "nms_iou": float(nms_iou),
        "merge_fwhm": bool(merge), "host_cut": bool(host_cut),
        "model": {"arch": gm.arch, "path": str(gm.metadata.get("path", "")),
                  "saved_utc": str(gm.metadata.get("saved_utc", "")),
                  "package_version": str(gm.metadata.get("package_version", ""))},
    }
    table = catalogue(cands, image, host if host_cut else np.ones(image.shape, bool), meta)
    progress.update(1.0, f"{len(table)} candidates")
    return table


def baseline_raw(image: GalaxyImage, filter_fwhm: float = 3.0, kernel_fwhm: float = 1.0,
                 sharplo: float = 0.2, odd_g_r: float = BASELINE_ODD_G_R) -> Candidates:
    """Classical candidates: DAOStarFinder on the residual of a smooth galaxy model.

    The smooth model is a median filter ``filter_fwhm`` PSF FWHMs wide (a point source
    covers less than half of it, so it does not enter the model).  Scores are
    ``snr / (snr + 10)`` with ``snr`` = peak / noise, so score 0.3 is a 4.3-sigma peak
    and the same thresholds sweep both methods.  The galaxy's own centre (the light-weighted
    centre of the smooth model in the host segment) is not a candidate: a classical finder
    knows the bulge is there.
    Sources redder than :data:`BASELINE_ODD_G_R` in g - r are 'odd'.

    Parameters
    ----------
    image : GalaxyImage
        With g, r, i planes.
    filter_fwhm : float
        Median-filter width, in PSF FWHMs.
    kernel_fwhm : float
        DAOStarFinder's kernel FWHM, in PSF FWHMs (above 1 favours resolved clumps).
    sharplo : float
        DAOStarFinder's lower sharpness limit (lower keeps broader sources).
    odd_g_r : float
        g - r above which a source is 'odd'.
    """
    from photutils.detection import DAOStarFinder
    from scipy.ndimage import median_filter, zoom

    if image.planes is None:
        raise GalaxyError("the classical baseline needs g, r, i planes (FITS), not an RGB image")
    fwhm = float(image.psf_fwhm_pix)
    r = np.nan_to_num(np.asarray(image.planes[1], dtype=np.float64))
    # median filter on 2x2-binned pixels (16x cheaper), interpolated back
    ny, nx = r.shape
    binned = r[:ny - ny % 2, :nx - nx % 2].reshape(ny // 2, 2, nx // 2, 2).mean(axis=(1, 3))
    size = int(2 * round(filter_fwhm * fwhm / 4) + 1)
    small = median_filter(binned, size=size, mode="nearest")
    smooth = zoom(small, (ny / small.shape[0], nx / small.shape[1]), order=1, mode="nearest",
                  grid_mode=True)
    resid = r - smooth
    sigma = noise_sigma(r)
    finder = DAOStarFinder(threshold=2.0 * sigma, fwhm=kernel_fwhm * fwhm,
                           sharpness_range=(sharplo, 1.0),
                           exclude_border=True)
    found = finder(resid)
    if found is None or len(found) == 0:
        return Candidates(np.zeros((0, 4)), [], [])
    x = np.asarray(found["x_centroid"] if "x_centroid" in found.colnames
                   else found["xcentroid"], dtype=np.float64)
    y = np.asarray(found["y_centroid"] if "y_centroid" in found.colnames
                   else found["ycentroid"], dtype=np.float64)
    ix = np.clip(np.round(x).astype(int), 0, r.shape[1] - 1)
    iy = np.clip(np.round(y).astype(int), 0, r.shape[0] - 1)
    snr = resid[iy, ix] / sigma
    # the host's centre: flux-weighted centroid of the smooth model in its segment
    host = host_mask(image)
    w = np.clip(smooth, 0, None) * host
    yy, xx = np.mgrid[0:ny, 0:nx]
    cx, cy = (float((w * xx).sum() / w.sum()), float((w * yy).sum() / w.sum())) if w.sum() > 0 \
        else ((nx - 1) / 2, (ny - 1) / 2)
    keep = np.hypot(x - cx, y - cy) > 1.5 * fwhm
    x, y, snr = x[keep], y[keep], snr[keep]
    g = aperture_fluxes(image.planes[0], x, y, fwhm)
    rf = aperture_fluxes(r, x, y, fwhm)
    with np.errstate(invalid="ignore", divide="ignore"):
        g_r = -2.5 * np.log10(np.clip(g, 1e-12, None) / np.clip(rf, 1e-12, None))
    labels = np.where(g_r > odd_g_r, 2, 1)
    h = max(fwhm, 3.0)
    boxes = np.stack([x - h, y - h, x + h, y + h], axis=1)
    scores = np.clip(snr, 0, None) / (np.clip(snr, 0, None) + 10.0)
    return Candidates(boxes, scores, labels, x, y)


def baseline_clumps(image: GalaxyImage, score_min: float = SCORE_MIN) -> Table:
    """The classical baseline's catalogue (same columns as :func:`detect_clumps`)."""
    host = host_mask(image)
    cands = postprocess(baseline_raw(image), image, score_min, NMS_IOU, True, host)
    return catalogue(cands, image, host, {"method": "baseline_daofind",
                                          "score_min": float(score_min)})
