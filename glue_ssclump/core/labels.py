"""Manual labels: the ``clump_id,label`` CSV shared by the CLI, glue and the viewer.

Codes: 1 = clump, 0 = not a clump, 2 = uncertain, -1 = not labelled.  Only 0 and 1 are
used as training seeds; uncertain labels are kept (and saved) but never seed.  Writes
are atomic (temporary file + rename) so an autosave interrupted by a crash never
leaves a half-written file behind.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .atomic import write_atomic
from .errors import SSClumpError

LABEL_NONE = -1
LABEL_NOT_CLUMP = 0
LABEL_CLUMP = 1
LABEL_UNCERTAIN = 2

LABEL_NAMES = {LABEL_NONE: "", LABEL_NOT_CLUMP: "not clump", LABEL_CLUMP: "clump",
               LABEL_UNCERTAIN: "uncertain"}

#: SS-3D-Clump's verdicts on a candidate (``''`` in a column: not verified).
VERDICTS = ("clump", "rejected", "uncertain")
#: Default verdict rule: p(clump) >= threshold is a clump, within ``band`` of it uncertain.
DEFAULT_THRESHOLD = 0.5
DEFAULT_BAND = 0.1

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


_FORMAT_HINT = ("write a header line 'clump_id,label' and one row per labelled candidate, "
                "label 1 = clump, 0 = not clump, 2 = uncertain")


def _decode(raw: bytes, path: Path) -> str:
    """The file's text: UTF-8 (with or without a BOM) or UTF-16 with a BOM."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16"
    elif raw.startswith(b"\xef\xbb\xbf"):
        codec = "utf-8-sig"
    else:
        codec = "utf-8"
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        raise LabelsError(
            f"{path} is not UTF-8 text (undecodable byte at position {exc.start}); save it "
            "as UTF-8 CSV (in a spreadsheet: 'CSV UTF-8'), " + _FORMAT_HINT) from None
    if "\0" in text:
        raise LabelsError(f"{path} holds NUL bytes, so it is not a text CSV (UTF-16 without a "
                          f"byte-order mark, or a binary file); save it as UTF-8 CSV and "
                          + _FORMAT_HINT)
    return text


def read_labels_csv(path: str | Path) -> dict[int, int]:
    """Read a ``clump_id,label`` CSV into ``{clump_id: code}``.

    Labels may be codes (1, 0, 2, -1) or words (clump / not clump / uncertain, yes / no).
    Unlabelled rows (-1 or empty) are dropped; a repeated id with the same label is
    kept once. The text may be UTF-8 (a byte-order mark is fine) or UTF-16 with a BOM.

    Raises
    ------
    LabelsError
        Missing or unreadable file, no ``clump_id,label`` header, an id that is not a
        positive integer, an unknown label, or one id with two different labels.
    """
    path = Path(path)
    if path.is_dir():
        raise LabelsError(f"labels file {path} is a folder; give the .csv file inside it")
    if not path.exists():
        raise LabelsError(f"labels file {path} does not exist; check the path (the viewer "
                          "autosaves labels as DIR/labels.csv)")
    if not path.is_file():  # a pipe or device: reading could block forever
        raise LabelsError(f"labels file {path} is not a regular file (a pipe or device); "
                          "give the .csv file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LabelsError(f"labels file {path} cannot be read ({exc.strerror}); check its "
                          "permissions") from None
    lines = _decode(raw, path).splitlines()
    reader = csv.DictReader(row for row in lines if not row.lstrip().startswith("#"))
    try:
        names = reader.fieldnames
    except csv.Error as exc:
        raise LabelsError(f"{path}: not a readable CSV ({exc}); {_FORMAT_HINT}") from None
    fields = [(f or "").strip().lower() for f in (names or [])]
    if "clump_id" not in fields or "label" not in fields:
        raise LabelsError(f"{path}: expected a header line 'clump_id,label' (found {names}); "
                          + _FORMAT_HINT)
    out: dict[int, int] = {}
    lineno = 1
    try:
        for lineno, row in enumerate(reader, start=2):
            row = {k.strip().lower(): (v if isinstance(v, str) else "").strip()
                   for k, v in row.items() if isinstance(k, str)}
            cid = _clump_id(row["clump_id"], path, lineno)
            if cid is None:
                continue
            code = _WORDS.get(row["label"].lower())
            if code is None:
                raise LabelsError(f"{path}:{lineno}: label {row['label']!r} is not one of "
                                  "1 (clump), 0 (not clump), 2 (uncertain); fix that row")
            if code == LABEL_NONE:
                continue
            if out.get(cid, code) != code:
                raise LabelsError(
                    f"{path}:{lineno}: clump_id {cid} is labelled twice, as "
                    f"{LABEL_NAMES[out[cid]]!r} and {LABEL_NAMES[code]!r}; keep one of the rows")
            out[cid] = code
    except csv.Error as exc:
        raise LabelsError(f"{path}:{lineno}: not a readable CSV row ({exc}); "
                          + _FORMAT_HINT) from None
    return out


def _clump_id(text: str, path: Path, lineno: int) -> int | None:
    """A row's candidate id (``None`` for an empty row); ids are positive integers."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or value != int(value) or value < 1 or value >= 2**31:
        raise LabelsError(f"{path}:{lineno}: clump_id {text!r} is not an integer; clump_id "
                          "is the candidate's id in the catalogue (1, 2, 3, ...)")
    return int(value)


def write_labels_csv(path: str | Path, labels: Mapping[int, int]) -> Path:
    """Atomically write ``{clump_id: code}`` (unlabelled entries skipped) as CSV."""
    rows = [[int(cid), int(labels[cid])] for cid in sorted(labels)
            if int(labels[cid]) != LABEL_NONE]

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["clump_id", "label"])
            writer.writerows(rows)

    return write_atomic(path, write)


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
            f"(e.g. {sorted(missing)[:5]}): were the labels made for another detection run? "
            "Use the labels saved with this catalogue, or drop those rows"
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
