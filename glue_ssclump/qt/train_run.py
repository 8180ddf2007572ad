"""A train dialog run, in and out: the job copied from glue, the verdicts written back.

Qt-free and on the GUI thread: :func:`make_train_job` copies everything the run needs
out of glue objects into a :class:`~glue_ssclump.core.jobs.TrainJob` (the run itself
goes to a child process and never touches glue), and :func:`write_outcome` puts the
result back into the catalogue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from glue.core.data import Data
from glue.core.data_collection import DataCollection

from ..core.jobs import TrainJob, TrainOutcome
from ..core.training import DEFAULT_CHECKPOINT
from ..integration.factory import ppv_cube_from_data
from ..integration.pairing import KEY, META_RMS, cube_data_for
from ..integration.run_folder import default_output_dir, new_run_dir
from ..integration.writeback import VERDICT, write_verdicts
from .train_seeds import plan_for
from .train_state import TrainState, pool_label

__all__ = ["make_train_job", "write_outcome"]


def _init_model(state: TrainState, train: bool) -> str | Path:
    """The model to start from: ``'default'``, ``'scratch'`` or a checkpoint path."""
    init: str | Path = str(state.init)
    if init == "checkpoint":
        path = Path(str(state.checkpoint_path)).expanduser()
        if not str(state.checkpoint_path) or not path.is_file():
            raise ValueError(f"Choose an existing checkpoint file (got "
                             f"{str(state.checkpoint_path)!r}).")
        init = path
    elif init == "default" and not DEFAULT_CHECKPOINT.is_file():
        raise ValueError("The shipped default model is not installed "
                         f"({DEFAULT_CHECKPOINT}); start from scratch or from a "
                         "checkpoint file.")
    if not train and init == "scratch":
        raise ValueError("Verify only needs a trained model: choose the shipped "
                         "default model or a checkpoint file.")
    return init


def make_train_job(state: TrainState, session: Any) -> TrainJob:
    """Copy the cube, mask, seeds and settings into a :class:`TrainJob`.

    A training run gets a new run folder (under ``state.out_dir``, or the catalogue's
    default folder) to save its model in.

    Parameters
    ----------
    state : TrainState
        The dialog's settings.
    session : glue Session
        For the default output folder (next to the session file).

    Returns
    -------
    TrainJob

    Raises
    ------
    ValueError
        With a message for the user (no catalogue, no seeds of a class, ...).
    """
    cat = state.catalog_data
    if cat is None:
        raise ValueError("No candidate catalogue is chosen: detect candidates first "
                         "(SS-3D-Clump: detect clump candidates…).")
    cube_data = cube_data_for(cat)
    if cube_data is None:
        raise ValueError(f"The catalogue {cat.label!r} is not joined to a cube on "
                         "clump_id; make it with 'detect clump candidates'.")
    train = state.mode == "train"
    plan = plan_for(state)
    assert plan is not None
    if train and not plan.ok:
        raise ValueError("\n\n".join(plan.errors))
    init = _init_model(state, train)
    from ..core.device import resolve_device

    resolve_device(state.device)  # a missing GPU is reported before starting
    config = state.config()
    cube = ppv_cube_from_data(cube_data)
    mask = np.asarray(cube_data[KEY])
    ids = np.asarray(cat[KEY], dtype=np.int64)
    table = Table({KEY: ids})
    rms = cat.meta.get(META_RMS)
    if isinstance(rms, (int, float)) and np.isfinite(rms) and rms > 0:
        table.meta["rms"] = float(rms)
    out_dir = None
    if train:
        base = Path(str(state.out_dir or default_output_dir(cat, session)))
        out_dir = new_run_dir(base.expanduser())
    seeds_from = (["manual labels"] if state.use_labels else []) + [
        f"subset {g.label!r} as {name}" for g, name in
        ((state.clump_subset, "clump"), (state.not_clump_subset, "not clump"))
        if g is not None]
    meta = {"catalogue": str(cat.label), "seeds_from": seeds_from,
            "pool": pool_label(state.pool_subset)}
    return TrainJob(data=cube.data, mask=mask, catalog=table, codes=plan.codes,
                    config=config, init=init, train=train,
                    threshold=(float(state.threshold) if state.threshold_rule == "fixed"
                               else str(state.threshold_rule)),
                    uncertain_band=float(state.uncertain_band),
                    pool=plan.pool if train else None,
                    heldout=plan.heldout if train else None,
                    out_dir=out_dir, meta=meta)


def write_outcome(data_collection: DataCollection, catalog: Data | None,
                  outcome: TrainOutcome) -> None:
    """Write a completed run's ``p_clump`` and ``verdict`` into the catalogue.

    Parameters
    ----------
    data_collection : DataCollection
    catalog : Data or None
        The catalogue the run was started on.
    outcome : TrainOutcome

    Raises
    ------
    ValueError
        When the catalogue left the session during the run.
    """
    if catalog is None or catalog not in data_collection:
        raise ValueError("The catalogue was removed from the session during the run; "
                         "the verdicts were not written.")
    v = outcome.verification
    write_verdicts(data_collection, catalog, p_clump=np.asarray(v.p_clump, float),
                   verdict=np.asarray(v.catalog[VERDICT]).astype(str),
                   clump_id=np.asarray(v.catalog[KEY], dtype=np.int64))
