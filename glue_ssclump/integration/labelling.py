"""Manual labels of a candidate catalogue: writing, undo, import and autosave (no Qt).

The verification viewer's ``y`` / ``n`` / ``u`` keys label the current candidate; each
change is written through :func:`~glue_ssclump.integration.writeback.write_verdicts`
(the catalogue's ``label`` component and the "Labelled: ..." subset groups), can be
undone, and is autosaved to a sidecar CSV next to the catalogue.  That bookkeeping is
here, on glue-core objects only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from glue.core.data import BaseData
from glue.core.data_collection import DataCollection

from ..core.labels import LABEL_NONE, LabelsError, labels_array, read_labels_csv, write_labels_csv
from .navigation import CatalogView
from .run_folder import slug
from .selection import keep_edit_subset
from .writeback import write_verdicts

__all__ = ["LabelBook", "default_autosave_path", "keep_old_sidecar"]


def default_autosave_path(catalog_data: BaseData, session: Any = None) -> Path:
    """Where the sidecar labels CSV of a catalogue goes unless the user chose a path.

    Next to the file the catalogue was loaded from, if glue knows it (its load log);
    otherwise next to the glue session file, if the session was saved; otherwise
    in ``~/.glue_ssclump/``. The file name is the catalogue's label plus ``.labels.csv``.

    Parameters
    ----------
    catalog_data : glue Data
        The catalogue.
    session : glue Session, optional
        Gives the session file of the application, if any.

    Returns
    -------
    pathlib.Path
    """
    name = f"{slug(catalog_data.label or 'catalogue')}.labels.csv"
    load_log = getattr(catalog_data, "_load_log", None)
    source = getattr(load_log, "path", None)
    if isinstance(source, str) and source:
        return Path(source).expanduser().resolve().parent / name
    app = getattr(session, "application", None)
    session_file = getattr(app, "_last_session_name", None)
    if isinstance(session_file, str) and session_file:
        return Path(session_file).expanduser().resolve().parent / name
    return Path.home() / ".glue_ssclump" / name


def keep_old_sidecar(path: Path, why: str) -> tuple[str, Path | None]:
    """Move a sidecar CSV aside (timestamped name) rather than overwrite it.

    Parameters
    ----------
    path : Path
        The sidecar.
    why : str
        Why it is kept, for the message.

    Returns
    -------
    message : str
        What was done, for the status line.
    new_path : Path or None
        Where labels must autosave from now on, when the file could not be renamed
        (None: the same path).
    """
    backup = path.with_name(f"{path.stem}.{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}")
    if backup.exists():
        backup = backup.with_name(f"{backup.stem}-{time.monotonic_ns()}{path.suffix}")
    try:
        path.rename(backup)
    except OSError as exc:
        # Cannot move it aside: write elsewhere rather than over it.
        return (f"{path} exists and {why}, and could not be renamed ({exc}); "
                f"labels now autosave to {backup}"), backup
    return (f"earlier labels file kept as {backup.name}: {why}; "
            "'Import labels…' merges it"), None


class LabelBook:
    """The manual labels of one catalogue, with an undo stack.

    Parameters
    ----------
    data_collection : DataCollection
        Holds the catalogue (the "Labelled: ..." groups are made in it).
    cat : CatalogView
        The catalogue.
    edit_subset_mode : glue EditSubsetMode, optional
        The session's: its edit subset is kept across writes (see
        :func:`~glue_ssclump.integration.selection.keep_edit_subset`).
    """

    def __init__(self, data_collection: DataCollection, cat: CatalogView,
                 edit_subset_mode: Any = None) -> None:
        self.data_collection = data_collection
        self.cat = cat
        self.edit_subset_mode = edit_subset_mode
        self._undo: list[list[tuple[int, int]]] = []

    @property
    def can_undo(self) -> bool:
        """True when there is a change to undo."""
        return bool(self._undo)

    def labels(self) -> dict[int, int]:
        """``{clump_id: code}`` of the labelled candidates."""
        codes = self.cat.labels()
        keep = codes != LABEL_NONE
        return {int(c): int(v) for c, v in zip(self.cat.ids[keep], codes[keep], strict=True)}

    def write(self, changes: Mapping[int, int]) -> None:
        """Write ``{clump_id: code}`` into the catalogue (no undo entry)."""
        ids = np.fromiter(changes.keys(), dtype=np.int64, count=len(changes))
        codes = np.fromiter(changes.values(), dtype=np.int64, count=len(changes))
        with keep_edit_subset(self.data_collection, self.edit_subset_mode):
            write_verdicts(self.data_collection, self.cat.data, label=codes, clump_id=ids)

    def set_label(self, row: int, code: int) -> int:
        """Label catalogue ``row`` with ``code`` (undoable); returns its clump id."""
        cid = int(self.cat.ids[row])
        old = int(self.cat.labels()[row])
        self.write({cid: int(code)})
        self._undo.append([(cid, old)])
        return cid

    def undo(self) -> list[tuple[int, int]] | None:
        """Undo the last change; the ``(clump_id, restored code)`` pairs (None: none)."""
        if not self._undo:
            return None
        entries = self._undo.pop()
        self.write(dict(entries))
        return entries

    def merge(self, new: Mapping[int, int]) -> int:
        """Give the listed candidates these labels (one undo step); how many changed."""
        current = self.cat.labels()
        undo = [(cid, int(current[self.cat.row_of[cid]])) for cid, code in new.items()
                if int(current[self.cat.row_of[cid]]) != int(code)]
        if undo:
            self.write({cid: int(new[cid]) for cid, _ in undo})
            self._undo.append(undo)
        return len(undo)

    def import_csv(self, path: str | Path) -> tuple[int, int]:
        """Merge a ``clump_id,label`` CSV: ``(labels read, labels changed)``.

        Raises
        ------
        LabelsError
            Unreadable file, or ids that are not in this catalogue.
        """
        new = read_labels_csv(path)
        labels_array(self.cat.ids, new, strict=True)  # raises for ids of another catalogue
        return len(new), self.merge(new)

    def autosave(self, path: str | Path) -> Path:
        """Write the labels to the sidecar CSV ``path`` (``OSError`` if it cannot)."""
        target = Path(str(path)).expanduser()
        write_labels_csv(target, self.labels())
        return target

    def recover_sidecar(self, path: str | Path | None) -> tuple[str, Path | None]:
        """Pick up the autosaved labels of an earlier run (e.g. after a crash).

        Restored only into a catalogue that has no labels yet (undoable); a sidecar
        that differs from labels the catalogue already has is kept under a new name
        rather than overwritten by the next autosave (:func:`keep_old_sidecar`).

        Returns
        -------
        message : str
            What was done, for the status line ('' if nothing).
        new_path : Path or None
            A new autosave path, when the old file could not be moved aside.
        """
        sidecar = Path(str(path)).expanduser() if path else None
        if sidecar is None or not sidecar.is_file():
            return "", None
        try:
            saved = read_labels_csv(sidecar)
            labels_array(self.cat.ids, saved, strict=True)
        except (LabelsError, OSError) as exc:
            return keep_old_sidecar(sidecar, f"it does not fit this catalogue ({exc})")
        current = self.labels()
        if saved == current:
            return "", None
        if not current:
            changed = self.merge(saved)
            return f"restored {changed} autosaved labels from {sidecar} (z undoes)", None
        return keep_old_sidecar(sidecar, "it differs from the catalogue's labels")
