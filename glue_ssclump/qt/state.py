"""Echo state of the verification viewer (saved and restored with the glue session)."""

from __future__ import annotations

from typing import Any

from echo import CallbackProperty, SelectionCallbackProperty
from glue.viewers.common.state import ViewerState

from ..integration.pairing import is_catalog, is_cube

__all__ = ["ORDERS", "VerificationViewerState", "data_label"]

#: Navigation orders: state value -> label shown in the options panel.
ORDERS = {
    "catalogue": "Catalogue order",
    "uncertain": "Most uncertain first (|p_clump - 0.5|)",
    "snr": "Lowest peak SNR first",
    "random": "Random sample (seeded)",
    "list": "Given list of ids",
}


def data_label(data: Any) -> str:
    """A dataset's name for a combo box ('' for none)."""
    return "" if data is None else str(getattr(data, "label", data))


class VerificationViewerState(ViewerState):
    """State of :class:`~glue_ssclump.qt.viewer.VerificationViewer`.

    Every attribute here is a callback property, so the whole state (including the
    datasets, by reference) is written into a glue session file and restored from it.
    """

    catalog_data = SelectionCallbackProperty(
        docstring="The candidate catalogue (1-D dataset with clump_id)")
    cube_data = SelectionCallbackProperty(
        docstring="The cube (3-D dataset with intensity and the clump_id mask)")
    current_id = CallbackProperty(None, docstring="clump_id of the candidate shown")
    order = SelectionCallbackProperty(default_index=0, choices=list(ORDERS),
                                      docstring="Navigation order")
    navigation_ids = CallbackProperty(
        None, docstring="clump_ids visited, in this order, when order is 'list' (a list "
                        "of int, or None); set with VerificationViewer.set_navigation_ids")
    unlabelled_only = CallbackProperty(False, docstring="Skip candidates that have a label")
    advance_after_label = CallbackProperty(True, docstring="Go to the next candidate after "
                                                           "a label is given")
    seed = CallbackProperty(0, docstring="Seed of the random order")
    autosave_path = CallbackProperty("", docstring="Sidecar labels CSV written after "
                                                   "every label ('' = not yet chosen)")
    margin_frac = CallbackProperty(0.5, docstring="Margin around the bounding box, as a "
                                                  "fraction of its extent")
    margin_min = CallbackProperty(5, docstring="Smallest margin around the bounding box "
                                               "(pixels)")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        VerificationViewerState.order.set_display_func(self, ORDERS.get)
        VerificationViewerState.catalog_data.set_display_func(self, data_label)
        VerificationViewerState.cube_data.set_display_func(self, data_label)
        self._seed_data_choices(kwargs)
        self.update_from_dict(kwargs)

    def _seed_data_choices(self, values: dict[str, Any]) -> None:
        # A selection property only accepts one of its choices; when the state is
        # built from a session file, the datasets it names are its first choices.
        for name in ("catalog_data", "cube_data"):
            data = values.get(name)
            if data is not None:
                getattr(VerificationViewerState, name).set_choices(self, [data])

    def refresh_data_choices(self, datasets: Any) -> None:
        """Offer the catalogues and cubes among ``datasets`` (e.g. the data collection).

        Parameters
        ----------
        datasets : iterable of glue Data
        """
        datasets = list(datasets)
        VerificationViewerState.catalog_data.set_choices(
            self, [d for d in datasets if is_catalog(d)])
        VerificationViewerState.cube_data.set_choices(
            self, [d for d in datasets if is_cube(d)])

    def _update_priority(self, name: str) -> int:
        # Datasets first, then everything that depends on them, current_id last.
        if name in ("catalog_data", "cube_data"):
            return 3
        if name == "current_id":
            return 0
        if name == "navigation_ids":
            return 2  # before the order that uses it
        return 1
