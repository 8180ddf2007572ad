"""Fuzz the manual-labels reader with malformed ``clump_id,label`` CSV files.

Encodings and byte-order marks, a missing header, extra columns, other delimiters,
duplicate and conflicting rows, ids that are not integers or not in the catalogue, and
seeded random files: every case ends in labels or a LabelsError naming the fix.
"""

from __future__ import annotations

import os

import numpy as np
from fuzz import Failures, run_case

from glue_ssclump.core.labels import LabelsError, labels_array, read_labels_csv

CATALOGUE_IDS = np.arange(1, 11)

HEADER = "clump_id,label\n"
TEXT_CASES: dict[str, str] = {
    "valid": HEADER + "1,1\n2,0\n3,2\n",
    "words": HEADER + "1,clump\n2,not clump\n3,Uncertain\n4,yes\n5,no\n",
    "missing header": "1,1\n2,0\n",
    "header only": HEADER,
    "empty": "",
    "blank lines": "\n\n" + HEADER + "\n1,1\n\n2,0\n\n",
    "whitespace only": "   \n\t\n",
    "extra columns": "clump_id,label,note,p\n1,1,bright,0.9\n2,0,,0.1\n",
    "columns swapped": "label,clump_id\n1,3\n0,4\n",
    "upper-case header with spaces": " Clump_ID , LABEL \n1,1\n",
    "header repeated in the middle": HEADER + "1,1\n" + HEADER + "2,0\n",
    "duplicate rows, same label": HEADER + "1,1\n1,1\n2,0\n",
    "conflicting labels": HEADER + "1,1\n1,0\n",
    "conflicting words": HEADER + "3,clump\n3,not clump\n",
    "semicolon delimiter": "clump_id;label\n1;1\n",
    "tab delimiter": "clump_id\tlabel\n1\t1\n",
    "quoted fields": '"clump_id","label"\n"1","1"\n"2","0"\n',
    "unterminated quote": 'clump_id,label\n"1,1\n2,0\n',
    "fractional id": HEADER + "1.5,1\n",
    "float id 2.0": HEADER + "2.0,1\n",
    "inf id": HEADER + "inf,1\n",
    "nan id": HEADER + "nan,1\n",
    "negative id": HEADER + "-3,1\n",
    "zero id": HEADER + "0,1\n",
    "huge id": HEADER + "1e30,1\n",
    "id beyond int32": HEADER + "4294967296,1\n",
    "empty id": HEADER + ",1\n",
    "unknown label": HEADER + "1,maybe\n",
    "label 3": HEADER + "1,3\n",
    "label -1 (unlabelled)": HEADER + "1,-1\n2,1\n",
    "missing label field": HEADER + "1\n2,1\n",
    "too many fields": HEADER + "1,1,1,1\n",
    "comment lines": "# labels\n" + HEADER + "# ok\n1,1\n",
    "CRLF line ends": "clump_id,label\r\n1,1\r\n2,0\r\n",
    "CR line ends": "clump_id,label\r1,1\r2,0\r",
    "very long line": HEADER + "1," + "1" * 100000 + "\n",
    "ids not in the catalogue": HEADER + "1,1\n99,0\n",
    "unicode label": HEADER + "1,clumpé\n",
    "NUL inside": HEADER + "1,\0\n",
}

ENCODED_CASES: dict[str, bytes] = {
    "UTF-8 with BOM": b"\xef\xbb\xbf" + HEADER.encode() + b"1,1\n",
    "UTF-16 with BOM": (HEADER + "1,1\n2,0\n").encode("utf-16"),
    "UTF-16-LE without BOM": (HEADER + "1,1\n").encode("utf-16-le"),
    "UTF-16-BE with BOM": b"\xfe\xff" + (HEADER + "1,1\n").encode("utf-16-be"),
    "UTF-32": (HEADER + "1,1\n").encode("utf-32"),
    "Latin-1 comment": "# étiquettes de Zoë\n".encode("latin-1") + HEADER.encode() + b"1,1\n",
    "cp1252 smart quotes": "\u201cclump_id\u201d,label\n1,1\n".encode("cp1252"),
    "binary": bytes(np.random.default_rng(0).integers(0, 256, 400, np.uint8)),
    "gzip bytes": b"\x1f\x8b\x08\x00" + bytes(100),
    "a FITS file": b"SIMPLE  =                    T" + b" " * 2850,
}

_TOKENS = ["clump_id", "label", "1", "0", "2", "-1", "", " ", "x", "1.5", "yes", "no",
           "clump", "uncertain", "nan", "inf", "99", "3", "7", '"', "'", "#", ";", "\t",
           "é", "\ufeff", "1e3", "-0", "+1", "  4  ", "NOT CLUMP"]


def _random_cases(n: int, seed: int = 0) -> dict[str, str]:
    """Files assembled from CSV-ish tokens: header variants, rows of 0-4 fields."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        lines = []
        if rng.random() < 0.8:
            lines.append(rng.choice(["clump_id,label", "label,clump_id", "clump_id",
                                     "id,label", "clump_id,label,extra", "CLUMP_ID;LABEL"]))
        for _ in range(int(rng.integers(0, 8))):
            k = int(rng.integers(0, 5))
            lines.append(",".join(str(rng.choice(_TOKENS)) for _ in range(k)))
        out[f"random {i}"] = "\n".join(lines) + ("\n" if rng.random() < 0.7 else "")
    return out


def test_labels_csv_fuzz(tmp_path, fuzz_tally):
    failures = Failures()
    files = []
    for name, text in {**TEXT_CASES, **_random_cases(150)}.items():
        path = tmp_path / f"{len(files)}.csv"
        path.write_text(text, encoding="utf-8", newline="")
        files.append(("labels CSV: " + ("random" if name.startswith("random") else "text"),
                      name, path))
    for name, raw in ENCODED_CASES.items():
        path = tmp_path / f"{len(files)}.csv"
        path.write_bytes(raw)
        files.append(("labels CSV: encodings", name, path))
    (tmp_path / "folder.csv").mkdir()
    files.append(("labels CSV: paths", "a folder", tmp_path / "folder.csv"))
    files.append(("labels CSV: paths", "no such file", tmp_path / "missing.csv"))
    if hasattr(os, "mkfifo"):  # reading a pipe would block: it must be refused unread
        os.mkfifo(tmp_path / "pipe.csv")
        files.append(("labels CSV: paths", "a named pipe", tmp_path / "pipe.csv"))

    outcomes = {}
    for kind, name, path in files:
        outcome, value = run_case(fuzz_tally, failures, kind, name,
                                  lambda p=path: read_labels_csv(p))
        outcomes[name] = (outcome, value)
        if outcome == "result":
            if not all(isinstance(k, int) and k > 0 and v in (0, 1, 2) for k, v in value.items()):
                failures.add(kind, name, f"labels with invalid ids or codes: {value}")
            # The catalogue check that follows reading (the CLI and glue do this).
            run_case(fuzz_tally, failures, "labels CSV: ids vs catalogue", name,
                     lambda v=value: labels_array(CATALOGUE_IDS, v))
    failures.check()

    # Cases whose outcome the issue names.
    assert outcomes["valid"][1] == {1: 1, 2: 0, 3: 2}
    assert outcomes["UTF-8 with BOM"][1] == {1: 1}
    assert outcomes["UTF-16 with BOM"][1] == {1: 1, 2: 0}
    assert outcomes["duplicate rows, same label"][1] == {1: 1, 2: 0}
    assert outcomes["extra columns"][1] == {1: 1, 2: 0}
    for name, match in [("conflicting labels", "labelled twice"),
                        ("missing header", "expected a header line"),
                        ("fractional id", "not an integer"), ("inf id", "not an integer"),
                        ("UTF-16-LE without BOM", "NUL bytes"), ("binary", "UTF-8"),
                        ("a folder", "is a folder")]:
        outcome, exc = outcomes[name]
        assert isinstance(exc, LabelsError) and match in str(exc), (name, exc)
    outcome, labels = outcomes["ids not in the catalogue"]
    try:
        labels_array(CATALOGUE_IDS, labels)
    except LabelsError as exc:
        assert "not in this catalogue" in str(exc)
    else:
        raise AssertionError("labels of ids not in the catalogue were accepted")
