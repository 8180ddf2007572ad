"""FellWalker's CleanIter step: 3x3x3 majority smoothing of the clump edges."""

from __future__ import annotations

import numpy as np

from ..progress import Progress
from .cupid_common import PaddedGrid
from .fellwalker_walk import CHUNK


def clean(labp: np.ndarray, grid: PaddedGrid, progress: Progress) -> None:
    """One CleanIter pass, in place: each voxel takes the commonest label of its box.

    Ties go to the label met first in scan order, as in CUPID; the box is cut at the
    cube edges (padding holds -1, which never votes).  A voxel whose own label fills
    14 or more of its 27 box voxels keeps it, so only the others are voted on.

    Parameters
    ----------
    labp : ndarray
        Padded clump ids (-1 in the padding, 0 background); changed in place.
    grid : PaddedGrid
        Its geometry.
    progress : Progress
        Progress reporting and cancellation.
    """
    p = grid.pad
    shape = grid.shape
    centre = labp[grid.inner]
    own = np.zeros(shape, dtype=np.uint8)
    for dz in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                shifted = (
                    slice(p + dz, p + dz + shape[0]),
                    slice(p + dy, p + dy + shape[1]),
                    slice(p + dx, p + dx + shape[2]),
                )
                own += centre == labp[shifted]
    idx = np.flatnonzero(own < 14)
    del own
    progress.update(0.3)
    z, rest = np.divmod(idx, shape[1] * shape[2])
    y, x = np.divmod(rest, shape[2])
    pos = ((z + p) * grid.strides[0] + (y + p) * grid.strides[1] + (x + p)).astype(grid.itype)
    del z, y, x, rest, idx
    box = grid.box_offsets(1)
    flat = labp.reshape(-1)
    new = np.empty(pos.size, dtype=labp.dtype)
    rows = max(1, CHUNK // 8)
    for lo in range(0, pos.size, rows):
        progress.update(0.3 + 0.7 * lo / max(pos.size, 1))
        new[lo:lo + rows] = _mode_rows(flat[pos[lo:lo + rows, None] + box[None, :]])
    flat[pos] = new
    progress.update(1.0)


def _mode_rows(votes: np.ndarray) -> np.ndarray:
    """Most common value >= 0 in each row, ties to the value seen first in the row."""
    m = votes.shape[0]
    best_val = np.zeros(m, dtype=votes.dtype)
    best_cnt = np.zeros(m, dtype=np.int64)
    rows = np.arange(m)
    avail = votes >= 0
    while rows.size:
        # Candidates in order of first appearance; a later one needs strictly more votes.
        cand = votes[np.arange(rows.size), np.argmax(avail, axis=1)]
        same = votes == cand[:, None]
        cnt = same.sum(axis=1)
        win = cnt > best_cnt[rows]
        best_cnt[rows[win]] = cnt[win]
        best_val[rows[win]] = cand[win]
        avail &= ~same
        go = avail.sum(axis=1) > best_cnt[rows]
        if not go.all():
            rows, votes, avail = rows[go], votes[go], avail[go]
    return best_val

