"""The shared labels CSV."""

from __future__ import annotations

import numpy as np
import pytest

from glue_ssclump.core.labels import (
    LABEL_CLUMP,
    LABEL_NONE,
    LABEL_NOT_CLUMP,
    LABEL_UNCERTAIN,
    LabelsError,
    labels_array,
    read_labels_csv,
    seed_labels,
    write_labels_csv,
)


def test_round_trip_skips_unlabelled(tmp_path):
    path = write_labels_csv(tmp_path / "l.csv", {3: 1, 1: 0, 7: 2, 9: -1})
    assert path.read_text().splitlines() == ["clump_id,label", "1,0", "3,1", "7,2"]
    assert read_labels_csv(path) == {1: 0, 3: 1, 7: 2}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_words_and_comments(tmp_path):
    p = tmp_path / "l.csv"
    p.write_text("# made by hand\nClump_ID, Label\n1,yes\n2,not clump\n3,uncertain\n4,\n")
    assert read_labels_csv(p) == {1: LABEL_CLUMP, 2: LABEL_NOT_CLUMP, 3: LABEL_UNCERTAIN}


@pytest.mark.parametrize("text, match", [
    ("id,lab\n1,1\n", "expected a header line"),
    ("clump_id,label\nx,1\n", "not an integer"),
    ("clump_id,label\n1,maybe\n", "is not one of"),
])
def test_bad_files_name_the_problem(tmp_path, text, match):
    p = tmp_path / "l.csv"
    p.write_text(text)
    with pytest.raises(LabelsError, match=match):
        read_labels_csv(p)


def test_missing_file(tmp_path):
    with pytest.raises(LabelsError, match="does not exist"):
        read_labels_csv(tmp_path / "none.csv")


def test_labels_array_and_seeds():
    codes = labels_array(np.array([5, 6, 7, 8]), {6: 1, 8: 2, 5: 0})
    np.testing.assert_array_equal(codes, [0, 1, LABEL_NONE, 2])
    np.testing.assert_array_equal(seed_labels(codes), [0, 1, -1, -1])
    with pytest.raises(LabelsError, match="not in this catalogue"):
        labels_array(np.array([1, 2]), {3: 1})
    assert labels_array(np.array([1, 2]), {3: 1}, strict=False).tolist() == [-1, -1]
