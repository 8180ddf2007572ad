"""The train dialog's widgets: their layout, which ones are enabled, the file choosers.

Functions of the dialog's ``ui`` (loaded from ``train_dialog.ui``) and its
:class:`~glue_ssclump.qt.train_state.TrainState`; the dialog connects them.
"""

from __future__ import annotations

from typing import Any

from qtpy import QtCore, QtWidgets

from .live_plots import freeze_height
from .train_state import TrainState
from .train_text import ERROR

__all__ = ["arrange", "browse_checkpoint", "browse_out_dir", "pin_progress_height",
           "show_advanced", "show_device", "update_enabled"]


def arrange(ui: Any) -> None:
    """Size the two columns of the dialog and fold the advanced settings.

    Parameters
    ----------
    ui : object
        The dialog's widgets.
    """
    # The settings column is as wide as its widest row (advanced rows included), so
    # the scroll area never clips fields; the plots take the remaining width.
    scrollbar = ui.scroll_left.verticalScrollBar().sizeHint().width()
    width = ui.scroll_contents.minimumSizeHint().width() + scrollbar + 6
    ui.scroll_left.setMinimumWidth(width)
    ui.widget_left.setMaximumWidth(width + 60)
    ui.layout_root.setStretch(0, 0)
    ui.layout_root.setStretch(1, 1)
    ui.layout_right.setStretch(0, 1)
    ui.layout_right.setStretch(1, 0)
    ui.widget_advanced.setVisible(False)
    freeze_height(ui.label_status, 2)


def pin_progress_height(ui: Any) -> None:
    """Give the progress group its full height (call when the dialog is shown).

    The word-wrapped labels of the right column make it height-for-width dependent,
    and the box layout then gives the plots less than their minimum: the group is
    pinned once the style is applied (sizes are only final when shown).

    Parameters
    ----------
    ui : object
        The dialog's widgets.
    """
    group = ui.group_progress
    group.setMinimumHeight(group.layout().minimumSize().height()
                           + group.contentsMargins().top())


def show_advanced(ui: Any, shown: bool) -> None:
    """Unfold (``shown``) or fold the advanced settings.

    Parameters
    ----------
    ui : object
        The dialog's widgets.
    shown : bool
    """
    ui.widget_advanced.setVisible(shown)
    ui.button_advanced.setArrowType(QtCore.Qt.DownArrow if shown else QtCore.Qt.RightArrow)


def update_enabled(ui: Any, state: TrainState, running: bool, can_retrain: bool) -> None:
    """Enable the settings that apply to the chosen mode, none while a run goes.

    Parameters
    ----------
    ui : object
        The dialog's widgets.
    state : TrainState
    running : bool
        A run is going.
    can_retrain : bool
        The last run completed (not cancelled).
    """
    train = state.mode == "train"
    for w in (ui.group_seeds, ui.value_epochs, ui.combosel_optimizer, ui.value_lr,
              ui.value_select_ratio, ui.value_batch_size, ui.value_passes, ui.value_seed,
              ui.value_holdout_percent):
        w.setEnabled(train and not running)
    checkpoint = state.init == "checkpoint"
    ui.text_checkpoint_path.setEnabled(checkpoint and not running)
    ui.button_browse_checkpoint.setEnabled(checkpoint and not running)
    for w in (ui.combosel_catalog_data, ui.combosel_mode, ui.combosel_init,
              ui.combosel_device, ui.combosel_threshold_rule, ui.value_uncertain_band,
              ui.text_out_dir, ui.button_browse_out):
        w.setEnabled(not running)
    ui.value_threshold.setEnabled(state.threshold_rule == "fixed" and not running)
    ui.button_run.setText("Train && verify" if train else "Verify")
    ui.button_run.setEnabled(not running)
    ui.button_retrain.setEnabled(not running and can_retrain)


def show_device(ui: Any, device: str) -> None:
    """Say which device ``device`` (``'auto'``, ``'cpu'``, ``'cuda'``) resolves to.

    Parameters
    ----------
    ui : object
        The dialog's widgets.
    device : str
    """
    from ..core.device import describe_device

    try:
        text = f"in use: {describe_device(device)}"
        style = "color: #555555;"
    except ValueError as exc:
        text, style = str(exc), f"color: {ERROR};"
    ui.label_device.setText(text)
    ui.label_device.setToolTip(text)
    ui.label_device.setStyleSheet(style)


def browse_checkpoint(parent: QtWidgets.QWidget, state: TrainState) -> None:
    """Choose a checkpoint file into ``state.checkpoint_path``.

    Parameters
    ----------
    parent : QWidget
        Parent of the file chooser.
    state : TrainState
    """
    path, _ = QtWidgets.QFileDialog.getOpenFileName(
        parent, "SS-3D-Clump checkpoint", state.checkpoint_path or state.out_dir,
        "PyTorch checkpoints (*.pt);;All files (*)")
    if path:
        state.checkpoint_path = path


def browse_out_dir(parent: QtWidgets.QWidget, state: TrainState) -> None:
    """Choose the folder that run folders are made in, into ``state.out_dir``.

    Parameters
    ----------
    parent : QWidget
        Parent of the folder chooser.
    state : TrainState
    """
    path = QtWidgets.QFileDialog.getExistingDirectory(parent, "Save models in", state.out_dir)
    if path:
        state.out_dir = path
