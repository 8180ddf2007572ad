"""The clump verification viewer, a glue-qt data viewer (in the spirit of
``glue_qt.viewers.image``: a package of small files).

* :mod:`.data_viewer`: :class:`VerificationViewer` (keys, navigation) and its tool;
* :mod:`.hub`: datasets, glue hub messages and followed selections;
* :mod:`.presenter`: render requests, prefetching, the side panel, the "Current
  candidate" group;
* :mod:`.labelling`: labels, undo, import and autosave;
* :mod:`.side_panel` (+ ``side_panel.ui``) and :mod:`.info_panel`: the side panel;
* :mod:`.cube`: the cube's arrays and the index thread.

The state and options widget are :mod:`glue_ssclump.qt.state` and
:mod:`glue_ssclump.qt.options_widget`; the Qt-free bookkeeping is in
:mod:`glue_ssclump.integration.navigation` and :mod:`glue_ssclump.integration.labelling`.
"""

from .data_viewer import (
    CURRENT_SUBSET_LABEL,
    KEYMAP,
    SaveFigureTool,
    VerificationViewer,
    default_autosave_path,
)

__all__ = ["CURRENT_SUBSET_LABEL", "KEYMAP", "SaveFigureTool", "VerificationViewer",
           "default_autosave_path"]
