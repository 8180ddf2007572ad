"""What the verification viewer shows for one candidate, computed with numpy only.

Kept free of Qt and glue so that the benchmark and the tests can time and check the
numbers without a display.  The viewer builds a :class:`CandidateIndex` once per
cube (one :func:`scipy.ndimage.find_objects` pass over the mask) and then calls
:func:`candidate_views` for every candidate it shows; that touches only the
candidate's bounding box plus a margin, so switching candidates costs the same on a
100^3 and a 1000^3 cube.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["CandidateIndex", "CandidateViews", "candidate_views", "crop_slices",
           "outline_segments"]

#: Largest id indexed directly: find_objects returns a list with one entry per id up to
#: the maximum, so masks with huge, sparse ids are relabelled to 1..N first.
_MAX_DIRECT_ID = 5_000_000


@dataclass
class CandidateIndex:
    """Bounding boxes of every candidate of a mask.

    Attributes
    ----------
    shape : tuple of int
        Shape ``(nv, ny, nx)`` of the mask.
    boxes : dict
        ``clump_id -> (slice_z, slice_y, slice_x)``.
    """

    shape: tuple[int, int, int]
    boxes: dict[int, tuple[slice, slice, slice]]

    @classmethod
    def build(cls, mask: np.ndarray) -> CandidateIndex:
        """Index a mask (0 = no candidate) with one ``find_objects`` pass.

        Parameters
        ----------
        mask : ndarray
            Integer mask ``(nv, ny, nx)``; each candidate's voxels hold its id (> 0).

        Returns
        -------
        CandidateIndex
        """
        mask = np.asarray(mask)
        if mask.ndim != 3:
            raise ValueError(f"the mask must be 3-D (v, y, x), got shape {mask.shape}")
        if not np.issubdtype(mask.dtype, np.integer):
            # Masks read back from FITS or through glue can be float; ids are integral.
            mask = np.nan_to_num(mask, nan=0.0).astype(np.int64)
        if mask.size == 0:
            return cls(shape=mask.shape, boxes={})
        top = int(mask.max())
        if top <= 0:
            return cls(shape=mask.shape, boxes={})
        positive = np.where(mask > 0, mask, 0) if mask.min() < 0 else mask
        boxes: dict[int, tuple[slice, slice, slice]] = {}
        if top <= _MAX_DIRECT_ID:
            for i, sl in enumerate(ndimage.find_objects(positive)):
                if sl is not None:
                    boxes[i + 1] = sl  # type: ignore[assignment]
        else:
            ids, inverse = np.unique(positive, return_inverse=True)
            shift = 0 if ids[0] == 0 else 1  # relabelled value k <-> ids[k - shift]
            found = ndimage.find_objects(inverse.reshape(mask.shape) + shift)
            for i, sl in enumerate(found):
                if sl is not None:
                    boxes[int(ids[i + 1 - shift])] = sl  # type: ignore[assignment]
        return cls(shape=mask.shape, boxes=boxes)

    def __len__(self) -> int:
        return len(self.boxes)

    def __contains__(self, cid: object) -> bool:
        return cid in self.boxes


def crop_slices(box: tuple[slice, slice, slice], shape: tuple[int, ...],
                margin_frac: float = 0.5, margin_min: int = 5) -> tuple[slice, slice, slice]:
    """The bounding box grown by ``max(margin_min, margin_frac * extent)`` on every side.

    Parameters
    ----------
    box : tuple of slice
        Bounding box ``(z, y, x)`` as returned by ``find_objects``.
    shape : tuple of int
        Cube shape; the result is clipped to it.
    margin_frac : float
        Margin as a fraction of the box's extent along each axis.
    margin_min : int
        Smallest margin in pixels.

    Returns
    -------
    tuple of slice
    """
    out = []
    for sl, n in zip(box, shape, strict=True):
        extent = sl.stop - sl.start
        m = max(int(margin_min), int(math.ceil(float(margin_frac) * extent)))
        out.append(slice(max(0, sl.start - m), min(n, sl.stop + m)))
    return tuple(out)  # type: ignore[return-value]


@dataclass
class CandidateViews:
    """Everything drawn for one candidate; pixel positions are in full-cube pixels.

    Attributes
    ----------
    crop : tuple of slice
        The region shown, ``(z, y, x)``.
    map_lb, map_lv, map_bv : ndarray
        Integrated maps over the crop: ``(ny, nx)`` summed over velocity and multiplied by
        the channel width (K km/s); ``(nz, nx)`` summed over y and ``(nz, ny)`` summed over
        x (K, sums over pixels).
    foot_lb, foot_lv, foot_bv : ndarray of bool
        The candidate's projections (same shapes as the maps).
    foot_other : tuple of ndarray of bool
        Projections (l-b, l-v, b-v) of the other candidates inside the crop.
    channels : ndarray
        Channel indices of the spectra: the candidate's channels plus
        ``max(map margin, 2 x its extent, 10)`` on each side (clipped to the cube).
    peak_spectrum, mean_spectrum : ndarray
        Spectrum at the peak pixel; mean spectrum over the candidate's l-b footprint.
    peak_xyz : tuple of int
        Peak voxel (x, y, z).
    z_range : tuple of int
        First and last channel of the candidate.
    """

    crop: tuple[slice, slice, slice]
    map_lb: np.ndarray
    map_lv: np.ndarray
    map_bv: np.ndarray
    foot_lb: np.ndarray
    foot_lv: np.ndarray
    foot_bv: np.ndarray
    foot_other: tuple[np.ndarray, np.ndarray, np.ndarray]
    channels: np.ndarray
    peak_spectrum: np.ndarray
    mean_spectrum: np.ndarray
    peak_xyz: tuple[int, int, int]
    z_range: tuple[int, int]


def candidate_views(intensity: np.ndarray, mask: np.ndarray, cid: int,
                    box: tuple[slice, slice, slice], *, margin_frac: float = 0.5,
                    margin_min: int = 5, peak_xyz: tuple[int, int, int] | None = None,
                    channel_width: float = 1.0) -> CandidateViews:
    """Maps, footprints and spectra of one candidate, computed on its cropped region only.

    Parameters
    ----------
    intensity : ndarray
        The cube ``(nv, ny, nx)``; NaN blanks count as 0 in sums and are skipped in means.
    mask : ndarray
        The mask, same shape.
    cid : int
        The candidate's id in ``mask``.
    box : tuple of slice
        Its bounding box (from :class:`CandidateIndex`).
    margin_frac, margin_min : float, int
        Margin around the box (see :func:`crop_slices`).
    peak_xyz : tuple of int, optional
        Peak voxel (x, y, z), e.g. from the catalogue; found in the crop if not given.
    channel_width : float
        Channel width in km/s, for the l-b map's units.

    Returns
    -------
    CandidateViews
    """
    crop = crop_slices(box, intensity.shape, margin_frac, margin_min)
    sub = np.asarray(intensity[crop], dtype=np.float32)
    lab = np.asarray(mask[crop])
    inside = lab == cid
    other = (lab != cid) & (lab > 0)
    finite = np.isfinite(sub)
    sub0 = np.where(finite, sub, np.float32(0))
    map_lb = sub0.sum(axis=0) * np.float32(abs(channel_width))
    map_lv = sub0.sum(axis=1)
    map_bv = sub0.sum(axis=2)
    foot_lb = inside.any(axis=0)
    foot_lv = inside.any(axis=1)
    foot_bv = inside.any(axis=2)
    z0, y0, x0 = crop[0].start, crop[1].start, crop[2].start
    if peak_xyz is None or not _inside(peak_xyz, crop):
        masked = np.where(inside & finite, sub, -np.inf)
        kz, ky, kx = np.unravel_index(int(np.argmax(masked)), sub.shape)
        peak_xyz = (int(kx + x0), int(ky + y0), int(kz + z0))
    px, py, _ = (int(v) for v in peak_xyz)
    # The spectra reach further in velocity than the maps: line-of-sight components
    # next to the candidate's range are part of what the eye needs to judge it.
    z_lo, z_hi = int(box[0].start), int(box[0].stop)
    reach = max(crop[0].stop - z_hi, z_lo - crop[0].start, 2 * (z_hi - z_lo), 10)
    zs = slice(max(0, z_lo - reach), min(intensity.shape[0], z_hi + reach))
    peak_spectrum = np.asarray(intensity[zs, py, px], dtype=np.float32)
    if foot_lb.any():
        spectra = np.asarray(intensity[zs, crop[1], crop[2]], dtype=np.float32)[:, foot_lb]
        counts = np.isfinite(spectra).sum(axis=1)
        total = np.where(np.isfinite(spectra), spectra, 0).sum(axis=1)
        mean_spectrum = np.full(spectra.shape[0], np.nan, dtype=np.float32)
        np.divide(total, counts, out=mean_spectrum, where=counts > 0)
    else:
        mean_spectrum = np.full(zs.stop - zs.start, np.nan, dtype=np.float32)
    return CandidateViews(
        crop=crop, map_lb=map_lb, map_lv=map_lv, map_bv=map_bv,
        foot_lb=foot_lb, foot_lv=foot_lv, foot_bv=foot_bv,
        foot_other=(other.any(axis=0), other.any(axis=1), other.any(axis=2)),
        channels=np.arange(zs.start, zs.stop),
        peak_spectrum=peak_spectrum, mean_spectrum=mean_spectrum,
        peak_xyz=(int(peak_xyz[0]), int(peak_xyz[1]), int(peak_xyz[2])),
        z_range=(int(box[0].start), int(box[0].stop - 1)),
    )


def _inside(xyz: tuple[int, int, int], crop: tuple[slice, slice, slice]) -> bool:
    x, y, z = (int(v) for v in xyz)
    return (crop[0].start <= z < crop[0].stop and crop[1].start <= y < crop[1].stop
            and crop[2].start <= x < crop[2].stop)


def outline_segments(mask: np.ndarray, x0: float = 0.0,
                     y0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-edge outline of a 2-D boolean mask as one NaN-separated polyline.

    Drawing the voxel mask's exact boundary (rather than a smoothed contour of it)
    shows precisely which pixels the detector assigned, and a single ``Line2D`` can
    be updated in place with ``set_data``.

    Parameters
    ----------
    mask : ndarray of bool
        ``(ny, nx)``; pixel ``[j, i]`` covers ``x0 + i +- 0.5``, ``y0 + j +- 0.5``.
    x0, y0 : float
        Position of pixel ``[0, 0]``.

    Returns
    -------
    xs, ys : ndarray
        Vertex coordinates; each edge is two vertices followed by NaN.
    """
    m = np.pad(np.asarray(mask, dtype=bool), 1)
    # Horizontal edges lie between rows j-1 and j of the padded mask.
    hj, hi = np.nonzero(m[1:, 1:-1] != m[:-1, 1:-1])
    vj, vi = np.nonzero(m[1:-1, 1:] != m[1:-1, :-1])
    n = hj.size + vj.size
    xs = np.full((n, 3), np.nan)
    ys = np.full((n, 3), np.nan)
    # padded row j boundary = y of original row j - 0.5
    xs[:hj.size, 0] = hi - 0.5
    xs[:hj.size, 1] = hi + 0.5
    ys[:hj.size, 0] = hj - 0.5
    ys[:hj.size, 1] = hj - 0.5
    xs[hj.size:, 0] = vi - 0.5
    xs[hj.size:, 1] = vi - 0.5
    ys[hj.size:, 0] = vj - 0.5
    ys[hj.size:, 1] = vj + 0.5
    return xs.ravel() + x0, ys.ravel() + y0
