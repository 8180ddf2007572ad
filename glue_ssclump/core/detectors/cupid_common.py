"""Pieces shared by the CUPID detectors (ClumpFind and FellWalker).

Both work on a copy of the cube padded on every side, so that neighbour and box
searches become fixed flat-index offsets with no bounds tests, and both number the
clumps that survive their rejection tests 1..N by decreasing peak value.
"""

from __future__ import annotations

import numpy as np


class PaddedGrid:
    """Geometry of a cube padded by ``pad`` voxels on every side, in C order.

    Parameters
    ----------
    shape : tuple of int
        Shape of the unpadded cube.
    pad : int
        Voxels of padding on each side of every axis.
    """

    def __init__(self, shape: tuple[int, ...], pad: int) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.pad = pad
        self.pshape = tuple(s + 2 * pad for s in self.shape)
        self.psize = int(np.prod(self.pshape))
        self.itype = np.int32 if self.psize < 2**31 - 1 else np.int64
        self.strides = (self.pshape[1] * self.pshape[2], self.pshape[2], 1)
        self.inner = tuple(slice(pad, pad + s) for s in self.shape)

    def offset(self, dz: int, dy: int, dx: int) -> int:
        """Flat offset of the step ``(dz, dy, dx)`` in the padded array."""
        return dz * self.strides[0] + dy * self.strides[1] + dx

    def box_offsets(self, r: int) -> np.ndarray:
        """Flat offsets of a (2r+1)^3 box in C order (CUPID's scan order)."""
        d = np.arange(-r, r + 1)
        off = d[:, None, None] * self.strides[0] + d[None, :, None] * self.strides[1] + d
        return off.reshape(-1).astype(self.itype)

    def coords(self, pflat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unpadded (z, y, x) of padded flat indices."""
        z, rest = np.divmod(pflat, self.strides[0])
        y, x = np.divmod(rest, self.strides[1])
        return z - self.pad, y - self.pad, x - self.pad


def number_by_peak(keep: np.ndarray, peak: np.ndarray) -> np.ndarray:
    """Lookup table old clump id -> new id: survivors 1..N by decreasing peak.

    Parameters
    ----------
    keep : ndarray of bool
        Which clump ids (index = id) survive.
    peak : ndarray
        Peak value of every clump id, same length as ``keep``.

    Returns
    -------
    ndarray of int32
        0 for rejected ids; equal peaks keep their id order.
    """
    ids = np.flatnonzero(keep)
    ids = ids[np.argsort(-peak[ids], kind="stable")]
    lut = np.zeros(keep.size, dtype=np.int32)
    lut[ids] = np.arange(1, ids.size + 1, dtype=np.int32)
    return lut
