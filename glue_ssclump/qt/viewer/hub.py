"""glue plumbing of the verification viewer: datasets, hub messages, followed selections."""

from __future__ import annotations

from typing import Any

import numpy as np
from glue.core import message as msg
from glue.core.data import BaseData
from glue.core.exceptions import IncompatibleAttribute
from qtpy import QtCore, QtWidgets

from ...integration.labelling import LabelBook, default_autosave_path
from ...integration.navigation import CatalogView, Navigation, follow_row, ids_selected_by
from ...integration.pairing import KEY, catalog_data_for, cube_data_for, is_catalog, is_cube
from .cube import CubeArrays, IndexThread, is_deleted

__all__ = ["HubMixin"]

#: Subset groups maintained by glue-ssclump itself: never followed as "selections".
_MANAGED_PREFIXES = ("Labelled:", "SS-3D-Clump:")


class HubMixin:
    """What the viewer does when glue's data or selections change.

    Part of :class:`~glue_ssclump.qt.viewer.VerificationViewer` (it uses the viewer's
    state, ``_data`` and the other parts' methods).
    """

    def _init_hub(self) -> None:
        self._catalog: CatalogView | None = None
        self._cube: CubeArrays | None = None
        self._index: Any = None
        self._index_error: str | None = None
        self._index_token = 0
        self._threads: list[IndexThread] = []
        self._nav = Navigation()
        self._refresh_pending = False

    # -- glue plumbing -----------------------------------------------------------------

    def add_data(self, data: BaseData) -> bool:
        """Use a catalogue or a cube (the other one of the pair is found by the join)."""
        if data not in self._data:
            return False
        self.state.refresh_data_choices(self._data)
        if is_catalog(data):
            self.state.catalog_data = data
            return True
        if is_cube(data):
            catalog = catalog_data_for(data)
            current = self.state.catalog_data
            if catalog is not None and (current is None or cube_data_for(current) is not data):
                self.state.catalog_data = catalog  # its cube (this one) follows
            self.state.cube_data = data
            return True
        QtWidgets.QMessageBox.warning(
            self, "Not a candidate catalogue or cube",
            f"{data.label!r} is neither a candidate catalogue (1-D, with a clump_id column) "
            "nor a cube with a clump_id mask. Detect candidates first (glue-ssclump's "
            "'Detect clump candidates' or its data factory).")
        return False

    def add_subset(self, subset: Any) -> bool:
        """Subsets are not drawn here; a subset's data is added instead."""
        return self.add_data(subset.data)

    def register_to_hub(self, hub: Any) -> None:
        """Subscribe to the data collection's messages (glue-qt calls this)."""
        super().register_to_hub(hub)  # type: ignore[misc]
        # One handler per message class and subscriber (glue's hub keeps the last one):
        # these replace the layer-artist handlers of the base class, unused here.
        hub.subscribe(self, msg.DataCollectionAddMessage, handler=self._on_collection_changed)
        hub.subscribe(self, msg.DataCollectionDeleteMessage,
                      handler=self._on_collection_changed)
        hub.subscribe(self, msg.SubsetCreateMessage, handler=self._on_subset_message)
        hub.subscribe(self, msg.SubsetUpdateMessage, handler=self._on_subset_message)
        hub.subscribe(self, msg.SubsetDeleteMessage, handler=self._on_subset_deleted)
        for cls in (msg.NumericalDataChangedMessage, msg.ComponentsChangedMessage,
                    msg.DataAddComponentMessage, msg.DataUpdateMessage,
                    msg.ExternallyDerivableComponentsChangedMessage):
            hub.subscribe(self, cls, handler=self._on_data_message)

    def _on_collection_changed(self, message: Any) -> None:
        self.state.refresh_data_choices(self._data)

    def _on_data_message(self, message: Any) -> None:
        data = message.sender
        if isinstance(message, msg.DataUpdateMessage):
            if getattr(message, "attribute", None) == "label":
                self.state.refresh_data_choices(self._data)
            return
        if self._cube is not None and data is self._cube.data:
            if self._cube_arrays_changed(message):
                self._reload_cube()
        elif self._catalog is not None and data is self._catalog.data:
            self._schedule_catalog_refresh()
        elif is_catalog(data) or is_cube(data):
            self.state.refresh_data_choices(self._data)

    def _cube_arrays_changed(self, message: Any) -> bool:
        """Did the intensity or clump_id values change (not just, say, a new link)?"""
        cube = self._cube
        assert cube is not None
        names = {c.label: c for c in cube.data.main_components}
        # (ComponentID == builds a subset state, so ids are compared with `is`.)
        if KEY not in names or not any(c is cube.intensity_cid for c in names.values()):
            return True
        if np.asarray(cube.data[names[KEY]]) is not cube.mask \
                or np.asarray(cube.data[cube.intensity_cid]) is not cube.intensity:
            return True
        changed = getattr(message, "components_changed", None)
        if isinstance(message, msg.NumericalDataChangedMessage):
            return changed is None or any(c is cube.label_cid or c is cube.intensity_cid
                                          for c in changed)
        return False

    def _schedule_catalog_refresh(self) -> None:
        # write_verdicts broadcasts several messages per label; refresh once after them.
        if not self._refresh_pending:
            self._refresh_pending = True
            QtCore.QTimer.singleShot(0, self._refresh_catalog)

    def _refresh_catalog(self) -> None:
        self._refresh_pending = False
        if self._catalog is None or self._stopped or is_deleted(self):
            return
        self._catalog.refresh()
        self._build_order()
        self._update_panel()

    # -- datasets ------------------------------------------------------------------------

    def _on_catalog_changed(self, *args: Any) -> None:
        data = self.state.catalog_data
        # Refreshing the combo choices re-notifies the selection: nothing changed then.
        if (self._catalog.data if self._catalog is not None else None) is data:
            return
        if data is None:
            self._catalog = None
            self._book = None
            self._build_order()
            self._update_panel()
            self._redraw_current()
            return
        self._catalog = CatalogView(data)
        self._book = LabelBook(self._data, self._catalog, self.session.edit_subset_mode)
        cube = cube_data_for(data)
        if cube is not None and cube is not self.state.cube_data and cube in self._data:
            self.state.refresh_data_choices(self._data)
            self.state.cube_data = cube
        if not self.state.autosave_path:
            self.state.autosave_path = str(default_autosave_path(data, self.session))
        note = self._recover_sidecar()
        self._build_order()
        current = self.state.current_id
        if current is None or int(current) not in self._catalog.row_of:
            self._go_to_position(0, +1)
        else:
            self._on_current_changed()
        if note:
            self.status(note)

    def _on_cube_changed(self, *args: Any) -> None:
        if (self._cube.data if self._cube is not None else None) is self.state.cube_data:
            return
        self._reload_cube()

    def _reload_cube(self) -> None:
        """Read the cube's arrays again and re-index its mask (in a thread)."""
        data = self.state.cube_data
        self._index = None
        self._index_error = None
        self._index_token += 1
        self._new_generation()
        if data is None:
            self._cube = None
            self.vfigure.setup(None)
            self._redraw_current()
            return
        try:
            self._cube = CubeArrays(data)
        except (KeyError, StopIteration, IncompatibleAttribute) as exc:
            self._cube = None
            self.vfigure.setup(None)
            self.status(f"cannot use {data.label!r} as the cube: {exc}")
            self.view.set_message(f"{data.label!r} cannot be used as the cube: {exc}")
            return
        self.vfigure.setup(self._cube.geometry)
        self._renderer.set_cube(self._generation, self._cube.intensity, self._cube.mask,
                                self._cube.geometry)
        self.view.set_message("Indexing the candidates of the cube…")
        if self._stopped:
            return
        # In place: _stop_background (the destroyed hook) holds this list.
        self._threads[:] = [t for t in self._threads if not t.isFinished()]
        thread = IndexThread(self._index_token, self._cube.mask)
        thread.built.connect(self._on_index_built)
        self._threads.append(thread)
        thread.start()

    def _on_index_built(self, token: int, result: object) -> None:
        if token != self._index_token or self._stopped or is_deleted(self):
            # A newer cube (or mask) replaced this one meanwhile, or the viewer was
            # closed (its widgets may be gone).
            return
        if isinstance(result, Exception):
            self._index_error = f"could not index the cube's clump_id mask: {result}"
            self.status(self._index_error)
        else:
            self._index = result
        self._redraw_current()

    @property
    def is_ready(self) -> bool:
        """True once the candidates' bounding boxes are known (the figure can be drawn)."""
        return self._index is not None or self._index_error is not None

    # -- following glue selections ------------------------------------------------------

    def _on_subset_message(self, message: Any) -> None:
        if isinstance(message, msg.SubsetUpdateMessage) and message.attribute != "subset_state":
            return
        cat = self._catalog
        subset = message.subset
        # A subset group has one subset per dataset: react to the catalogue's only.
        if cat is None or subset.data is not cat.data:
            return
        group = getattr(subset, "group", None)
        label = str(getattr(group, "label", "") or "")
        if self._own_group_update or label.startswith(
                (*_MANAGED_PREFIXES, self.current_subset_label)):
            return
        cube = self._cube
        try:
            ids, from_cube = ids_selected_by(subset.subset_state, cat,
                                             None if cube is None else cube.data,
                                             None if cube is None else cube.mask)
        except IncompatibleAttribute:
            return
        if ids.size:
            row = follow_row(ids, from_cube, self.state.current_id, self._nav)
            if row is not None:
                self.state.current_id = int(cat.ids[row])

    def _on_subset_deleted(self, message: Any) -> None:
        group = getattr(message.subset, "group", None)
        if group is not None and group is self._current_group:
            self._current_group = None
