"""Manual labels: the ``clump_id,label`` CSV shared by the CLI, glue and the viewer.

Codes: 1 = clump, 0 = not a clump, 2 = uncertain, -1 = not labelled.  Only 0 and 1 are
used as training seeds; uncertain labels are kept (and saved) but never seed.  Writes
are atomic (temporary file + rename) so an autosave interrupted by a crash never
leaves a half-written file behind.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .errors import SSClumpError

LABEL_NONE = -1
LABEL_NOT_CLUMP = 0
LABEL_CLUMP = 1
LABEL_UNCERTAIN = 2

LABEL_NAMES = {LABEL_NONE: "", LABEL_NOT_CLUMP: "not clump", LABEL_CLUMP: "clump",
               LABEL_UNCERTAIN: "uncertain"}

#: One colour per verdict, the same on the viewer's buttons, in glue's subset groups and
#: in plots: clump green, not clump / rejected red, uncertain orange, none grey.
LABEL_COLOURS = {LABEL_CLUMP: "#2ca02c", LABEL_NOT_CLUMP: "#d62728",
                 LABEL_UNCERTAIN: "#ff7f0e", LABEL_NONE: "#777777"}

_WORDS = {
    "1": LABEL_CLUMP, "clump": LABEL_CLUMP, "yes": LABEL_CLUMP, "y": LABEL_CLUMP,
    "true": LABEL_CLUMP,
    "0": LABEL_NOT_CLUMP, "not clump": LABEL_NOT_CLUMP, "not_clump": LABEL_NOT_CLUMP,
    "no": LABEL_NOT_CLUMP, "n": LABEL_NOT_CLUMP, "false": LABEL_NOT_CLUMP,
    "2": LABEL_UNCERTAIN, "uncertain": LABEL_UNCERTAIN, "u": LABEL_UNCERTAIN,
    "-1": LABEL_NONE, "": LABEL_NONE,
}


class LabelsError(SSClumpError):
    """A labels file or label array that cannot be used."""


def read_labels_csv(path: str | Path) -> dict[int, int]:
    """Read a ``clump_id,label`` CSV into ``{clump_id: code}``.

    Labels may be codes (1, 0, 2, -1) or words (clump / not clump / uncertain, yes / no).
    Unlabelled rows (-1 or empty) are dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise LabelsError(f"labels file {path} does not exist")
    with path.open(newline="") as fh:
        reader = csv.DictReader(row for row in fh if not row.lstrip().startswith("#"))
        fields = [f.strip().lower() for f in (reader.fieldnames or [])]
        if "clump_id" not in fields or "label" not in fields:
            raise LabelsError(
                f"{path}: expected a header line 'clump_id,label' (found {reader.fieldnames}); "
                "write one row per labelled candidate, label 1 = clump, 0 = not clump"
            )
        out: dict[int, int] = {}
        for lineno, row in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            try:
                cid = int(float(row["clump_id"]))
            except ValueError:
                raise LabelsError(f"{path}:{lineno}: clump_id {row['clump_id']!r} "
                                  "is not an integer") from None
            code = _WORDS.get(row["label"].lower())
            if code is None:
                raise LabelsError(f"{path}:{lineno}: label {row['label']!r} is not one of "
                                  "1 (clump), 0 (not clump), 2 (uncertain)")
            if code != LABEL_NONE:
                out[cid] = code
    return out


def write_labels_csv(path: str | Path, labels: Mapping[int, int]) -> Path:
    """Atomically write ``{clump_id: code}`` (unlabelled entries skipped) as CSV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["clump_id", "label"])
            for cid in sorted(labels):
                code = int(labels[cid])
                if code != LABEL_NONE:
                    writer.writerow([int(cid), code])
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def labels_array(clump_ids: np.ndarray, labels: Mapping[int, int],
                 strict: bool = True) -> np.ndarray:
    """Per-candidate label codes (int8-range, -1 unlabelled) in ``clump_ids`` order.

    With ``strict``, a labelled id absent from ``clump_ids`` is an error (a labels
    file from another catalogue).
    """
    clump_ids = np.asarray(clump_ids, dtype=np.int64)
    out = np.full(clump_ids.shape, LABEL_NONE, dtype=np.int64)
    pos = {int(c): i for i, c in enumerate(clump_ids)}
    missing = [cid for cid in labels if cid not in pos]
    if strict and missing:
        raise LabelsError(
            f"{len(missing)} labelled clump_id(s) are not in this catalogue "
            f"(e.g. {sorted(missing)[:5]}): were the labels made for another detection run?"
        )
    for cid, code in labels.items():
        if cid in pos:
            out[pos[cid]] = int(code)
    return out


def seed_labels(codes: np.ndarray) -> np.ndarray:
    """Training seeds from label codes: 1 / 0 kept, uncertain and unlabelled -> -1."""
    codes = np.asarray(codes)
    return np.where((codes == LABEL_CLUMP) | (codes == LABEL_NOT_CLUMP), codes, -1).astype(
        np.int64)
