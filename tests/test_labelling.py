"""Manual labels of a catalogue: writing, undo, merge and the sidecar CSV (no Qt)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from glue.core import Data, DataCollection

from glue_ssclump.core.labels import (
    LABEL_CLUMP,
    LABEL_NONE,
    LABEL_NOT_CLUMP,
    LabelsError,
    read_labels_csv,
    write_labels_csv,
)
from glue_ssclump.integration.labelling import LabelBook, default_autosave_path
from glue_ssclump.integration.navigation import CatalogView


def _book() -> LabelBook:
    data = Data(clump_id=np.array([1, 2, 3]), label="my cat")
    dc = DataCollection([data])
    return LabelBook(dc, CatalogView(data))


def test_set_label_undo_and_groups():
    book = _book()
    assert book.labels() == {} and not book.can_undo
    assert book.set_label(1, LABEL_CLUMP) == 2
    assert book.labels() == {2: LABEL_CLUMP}
    assert any(g.label.startswith("Labelled") for g in book.data_collection.subset_groups)
    book.set_label(1, LABEL_NOT_CLUMP)
    assert book.undo() == [(2, LABEL_CLUMP)]
    assert book.undo() == [(2, LABEL_NONE)]
    assert book.labels() == {} and book.undo() is None


def test_merge_is_one_undo_step():
    book = _book()
    book.set_label(0, LABEL_CLUMP)
    assert book.merge({1: LABEL_CLUMP, 3: LABEL_NOT_CLUMP}) == 1  # 1 is already clump
    assert book.labels() == {1: LABEL_CLUMP, 3: LABEL_NOT_CLUMP}
    book.undo()
    assert book.labels() == {1: LABEL_CLUMP}


def test_import_and_autosave(tmp_path):
    book = _book()
    csv = tmp_path / "in.csv"
    write_labels_csv(csv, {2: LABEL_NOT_CLUMP})
    assert book.import_csv(csv) == (1, 1)
    out = book.autosave(tmp_path / "side.csv")
    assert read_labels_csv(out) == {2: LABEL_NOT_CLUMP}
    write_labels_csv(csv, {99: LABEL_CLUMP})
    with pytest.raises(LabelsError):
        book.import_csv(csv)


def test_recover_sidecar(tmp_path):
    side = tmp_path / "cat.labels.csv"
    assert _book().recover_sidecar(side) == ("", None)
    write_labels_csv(side, {3: LABEL_CLUMP})
    book = _book()
    note, new_path = book.recover_sidecar(side)
    assert note.startswith("restored 1") and new_path is None
    assert book.labels() == {3: LABEL_CLUMP}
    # labels already in the catalogue that differ: the sidecar is kept aside
    other = _book()
    other.set_label(0, LABEL_NOT_CLUMP)
    note, new_path = other.recover_sidecar(side)
    assert "kept as" in note and not side.exists() and new_path is None
    assert len(list(tmp_path.glob("cat.labels.*.csv"))) == 1


def test_default_autosave_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    data = Data(clump_id=np.array([1]), label="My catalogue")
    path = default_autosave_path(data)
    assert path.parent == Path.home() / ".glue_ssclump"
    assert path.name.endswith(".labels.csv")
