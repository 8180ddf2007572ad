"""glue-qt menubar plugins: the detect, the train & verify and the galaxy clumps dialogs.

glue-qt lists every ``glue_qt.config.menubar_plugin`` entry in its "Plugins" menu and
calls it as ``function(session, data_collection)``.  :func:`register_menubar_plugins`
adds the two entries (idempotent); the plugin's ``setup`` calls it before glue builds
its menus.

One dialog of each kind is kept per application window: choosing the menu entry again
raises it (with its state, plots and running job) instead of opening a second one.
The dialogs are not modal, so glue, its viewers and the verification viewer stay
usable while they are open.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DETECT_LABEL",
    "GALAXY_LABEL",
    "TRAIN_LABEL",
    "open_detect_dialog",
    "open_galaxy_dialog",
    "open_train_dialog",
    "register_menubar_plugins",
]

#: Menu labels (glue-qt shows them in its "Plugins" menu).
DETECT_LABEL = "SS-3D-Clump: detect clump candidates…"
TRAIN_LABEL = "SS-3D-Clump: train & verify…"
GALAXY_LABEL = "Galaxy clumps (Faster R-CNN): detect & verify…"

# Dialogs opened without an application window (scripts, tests): kept alive here.
_DETACHED: dict[tuple[str, int], Any] = {}


def _open(kind: str, cls: type, session: Any, data_collection: Any) -> Any:
    app = getattr(session, "application", None)
    parent = app if app is not None and hasattr(app, "findChildren") else None
    dialog = None
    if parent is not None:
        dialog = next((d for d in parent.findChildren(cls)
                       if d.data_collection is data_collection), None)
    else:
        dialog = _DETACHED.get((kind, id(data_collection)))
    if dialog is None:
        dialog = cls(session, data_collection, parent=parent)
        if parent is None:
            _DETACHED[(kind, id(data_collection))] = dialog
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog


def open_detect_dialog(session: Any, data_collection: Any) -> Any:
    """Menubar action: show the "detect clump candidates" dialog.

    Parameters
    ----------
    session : glue Session
    data_collection : DataCollection

    Returns
    -------
    DetectDialog
    """
    from .detect_dialog import DetectDialog

    return _open("detect", DetectDialog, session, data_collection)


def open_train_dialog(session: Any, data_collection: Any) -> Any:
    """Menubar action: show the "train & verify" dialog.

    Parameters
    ----------
    session : glue Session
    data_collection : DataCollection

    Returns
    -------
    TrainDialog
    """
    from .train_dialog import TrainDialog

    return _open("train", TrainDialog, session, data_collection)


def open_galaxy_dialog(session: Any, data_collection: Any) -> Any:
    """Menubar action: show the "galaxy clumps (Faster R-CNN)" dialog.

    Parameters
    ----------
    session : glue Session
    data_collection : DataCollection

    Returns
    -------
    GalaxyDialog
    """
    from .galaxy_dialog import GalaxyDialog

    return _open("galaxy", GalaxyDialog, session, data_collection)


def register_menubar_plugins() -> list[str]:
    """Add the dialogs to glue-qt's menubar plugins (idempotent).

    Returns
    -------
    list of str
        The labels registered (or already present).
    """
    from glue_qt.config import menubar_plugin

    present = {label for label, _ in menubar_plugin.members}
    for label, function in ((DETECT_LABEL, open_detect_dialog),
                            (TRAIN_LABEL, open_train_dialog),
                            (GALAXY_LABEL, open_galaxy_dialog)):
        if label not in present:
            menubar_plugin.add(label, function)
    return [DETECT_LABEL, TRAIN_LABEL, GALAXY_LABEL]
