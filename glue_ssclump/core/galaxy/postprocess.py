"""The paper's post-processing of raw detections (Popp et al., section 4.3).

1. class-agnostic non-maximum suppression at IoU 0.2 (torchvision.ops.nms): the raw
   proposals are nested boxes of one clump;
2. candidates closer than one r-band PSF FWHM (box midpoints) merge into one at the
   midpoint; the merged candidate is 'odd' if either was (figure 6), keeps the higher
   score and the union of the boxes;
3. candidates outside the host galaxy's segmentation map are dropped: the r band is
   smoothed with a Gaussian of the PSF FWHM and segmented with photutils at 1 sigma of
   the per-pixel noise; the host is the segment under the image centre (figure 7).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .image import GalaxyImage, noise_sigma

__all__ = ["Candidates", "class_agnostic_nms", "merge_close", "host_mask", "inside_mask",
           "NMS_IOU"]

NMS_IOU = 0.2


@dataclass
class Candidates:
    """Detections as arrays (one entry per candidate).

    ``boxes`` ``(n, 4)`` x_min, y_min, x_max, y_max (pix); ``x``, ``y`` centroids (box
    midpoints, or the merge midpoint); ``scores``; ``labels`` (1 clump, 2 odd).
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    x: np.ndarray | None = None
    y: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float64).ravel()
        self.labels = np.asarray(self.labels, dtype=np.int64).ravel()
        if self.x is None:
            self.x = (self.boxes[:, 0] + self.boxes[:, 2]) / 2
        if self.y is None:
            self.y = (self.boxes[:, 1] + self.boxes[:, 3]) / 2
        self.x = np.asarray(self.x, dtype=np.float64).ravel()
        self.y = np.asarray(self.y, dtype=np.float64).ravel()

    def __len__(self) -> int:
        return int(self.scores.size)

    def take(self, index: np.ndarray) -> Candidates:
        index = np.asarray(index)
        return Candidates(self.boxes[index], self.scores[index], self.labels[index],
                          self.x[index], self.y[index])

    def above(self, score_min: float) -> Candidates:
        return self.take(np.flatnonzero(self.scores >= score_min))


def class_agnostic_nms(cands: Candidates, iou: float = NMS_IOU) -> Candidates:
    """Keep the highest-scoring box of every group overlapping at IoU > ``iou``, whatever
    the class (torchvision.ops.nms); the result is sorted by score, highest first."""
    from torchvision.ops import nms

    if len(cands) == 0:
        return cands
    keep = nms(torch.as_tensor(cands.boxes, dtype=torch.float32),
               torch.as_tensor(cands.scores, dtype=torch.float32), float(iou)).numpy()
    return cands.take(keep)


def merge_close(cands: Candidates, fwhm: float) -> Candidates:
    """Merge candidates whose centroids are closer than ``fwhm`` (paper figure 6).

    The closest pair merges first, repeatedly, until no two are closer: the new centroid
    is the midpoint of the two, the class 'odd' (2) if either is odd, the score the
    higher one, the box the union.  Output sorted by score.
    """
    x, y = list(cands.x), list(cands.y)
    boxes = [b.copy() for b in cands.boxes]
    scores, labels = list(cands.scores), list(cands.labels)
    while len(x) > 1:
        xy = np.stack([x, y], axis=1)
        d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        np.fill_diagonal(d, np.inf)
        i, j = np.unravel_index(np.argmin(d), d.shape)
        if not d[i, j] < fwhm:
            break
        i, j = min(i, j), max(i, j)
        x[i], y[i] = (x[i] + x[j]) / 2, (y[i] + y[j]) / 2
        boxes[i] = np.r_[np.minimum(boxes[i][:2], boxes[j][:2]),
                         np.maximum(boxes[i][2:], boxes[j][2:])]
        scores[i] = max(scores[i], scores[j])
        labels[i] = 2 if 2 in (labels[i], labels[j]) else labels[i]
        for lst in (x, y, boxes, scores, labels):
            del lst[j]
    out = Candidates(np.array(boxes).reshape(-1, 4), scores, labels, x, y)
    return out.take(np.argsort(-out.scores, kind="stable"))


def _detection_plane(image: GalaxyImage) -> np.ndarray:
    if image.planes is not None:
        return np.nan_to_num(np.asarray(image.planes[1], dtype=np.float64))
    # RGB-only input: the mean of the (stretched) channels still outlines the galaxy
    rgb = np.asarray(image.rgb, dtype=np.float64)
    plane = rgb.mean(axis=2)
    border = np.r_[plane[0], plane[-1], plane[:, 0], plane[:, -1]]
    return plane - np.median(border)


def host_mask(image: GalaxyImage, nsigma: float = 1.0) -> np.ndarray:
    """Boolean ``(ny, nx)`` mask of the host galaxy's segment (paper figure 7).

    The r band (the RGB mean for an RGB-only image) is smoothed with a Gaussian kernel
    of FWHM = the PSF FWHM and segmented with photutils ``detect_sources`` at
    ``nsigma`` times the per-pixel noise of the unsmoothed plane.  The host is the
    segment under the image centre, else the largest segment within a quarter of the
    image of it; if there is none the mask is all True (no cut rather than no galaxy).
    """
    from astropy.convolution import convolve_fft
    from photutils.segmentation import detect_sources, make_2dgaussian_kernel

    plane = _detection_plane(image)
    fwhm = float(image.psf_fwhm_pix)
    size = int(2 * np.ceil(2 * fwhm) + 1)
    kernel = make_2dgaussian_kernel(fwhm, size=size)
    smoothed = convolve_fft(plane, kernel, normalize_kernel=True, boundary="fill",
                            fill_value=0.0)
    sigma = noise_sigma(plane)
    segm = detect_sources(smoothed, nsigma * sigma, n_pixels=max(5, int(np.pi * fwhm**2)))
    ny, nx = plane.shape
    if segm is None:
        return np.ones((ny, nx), dtype=bool)
    data = segm.data
    label = int(data[ny // 2, nx // 2])
    if label == 0:
        yy, xx = np.mgrid[0:ny, 0:nx]
        near = (np.hypot(xx - nx / 2, yy - ny / 2) < min(nx, ny) / 4) & (data > 0)
        if not near.any():
            return np.ones((ny, nx), dtype=bool)
        ids, counts = np.unique(data[near], return_counts=True)
        label = int(ids[np.argmax(counts)])
    return data == label


def inside_mask(cands: Candidates, mask: np.ndarray) -> Candidates:
    """The candidates whose centroid pixel lies in ``mask``."""
    if len(cands) == 0:
        return cands
    ny, nx = mask.shape
    ix = np.clip(np.round(cands.x).astype(int), 0, nx - 1)
    iy = np.clip(np.round(cands.y).astype(int), 0, ny - 1)
    return cands.take(np.flatnonzero(mask[iy, ix]))
