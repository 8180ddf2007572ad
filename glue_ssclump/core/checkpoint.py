"""Saving and loading trained SS-3D-Clump models: one file, weights + metadata.

A checkpoint is a ``torch.save`` archive of a plain dictionary::

    {"format": "glue-ssclump-checkpoint", "format_version": 1,
     "state_dict": {...}, "model_kwargs": {"dropout": 0.5},
     "metadata": {"arch_version", "input_size", "normalisation", "package_version",
                  "torch_version", "saved_utc", ... caller's entries (training config,
                  seed counts, metrics) ...}}

It is read back with ``torch.load(weights_only=True)``, so opening a checkpoint never
runs code from the file; that is why metadata is restricted to plain types (str, int,
float, bool, None, lists, tuples, dicts with string keys, tensors).  Every way a file
can be unusable (missing, truncated, corrupted, some other PyTorch file, a model of
another architecture, tensors of the wrong shape, NaN weights) raises
:class:`CheckpointError` with a message naming the problem and the fix.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..version import __version__
from .device import resolve_device
from .ensemble import ENSEMBLE_ARCH_VERSION, EnsembleNet
from .errors import SSClumpError
from .model import ARCH_VERSION, ARCHS, INPUT_SIZE, SSClumpNet

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "FORMAT", "FORMAT_VERSION"]

FORMAT = "glue-ssclump-checkpoint"
FORMAT_VERSION = 1
NORMALISATION = "minmax"

_RETRAIN = "retrain the model (ssclump train) or use the checkpoint it was saved as"


class CheckpointError(SSClumpError):
    """A file cannot be used as a glue-ssclump checkpoint (message says why and what to do)."""


def _plain(value: Any, where: str) -> Any:
    """Copy ``value`` into torch's weights-only-safe types; numpy values become Python."""
    # Exact builtin types: subclasses (torch's TorchVersion, enums) are refused on load.
    if value is None:
        return None
    if isinstance(value, bool):
        return bool(value)
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, (list, tuple)):
        items = [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"checkpoint metadata key {where}[{k!r}] must be a string")
            out[k] = _plain(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(
        f"checkpoint metadata {where} has type {type(value).__name__}; use str, int, float, "
        "bool, None, list, dict or a tensor (files are loaded with weights_only=True)"
    )


def save_checkpoint(path: str | os.PathLike, model: SSClumpNet | EnsembleNet,
                    metadata: dict | None = None) -> Path:
    """Write ``model``'s weights and ``metadata`` to one file (atomically).

    Parameters
    ----------
    path : str or PathLike
        Destination (conventionally ``*.pt``).  Written to a temporary file in the same
        folder first and renamed, so an interrupted save never leaves a half file.
    model : SSClumpNet or EnsembleNet
        The network (or the two networks of the ensemble verifier); its weights are
        stored on the CPU.
    metadata : dict, optional
        Caller's entries: training configuration, seed counts, metrics, ...  Plain types
        only (numpy scalars and arrays are converted).  ``arch_version``,
        ``input_size``, ``package_version``, ``torch_version`` and ``saved_utc`` are
        always set by this function; ``normalisation`` defaults to ``"minmax"``.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    TypeError
        If metadata holds a value of another type (named in the message).
    """
    path = Path(path)
    meta = _plain(dict(metadata or {}), "metadata")
    meta.setdefault("normalisation", NORMALISATION)
    meta.update(
        arch_version=getattr(model, "arch_version", ARCH_VERSION),
        # 'paper', 'context' (model.ARCHS) or 'ensemble'; files without it are 'paper'
        arch=getattr(model, "arch", "paper"),
        input_size=INPUT_SIZE,
        package_version=__version__,
        torch_version=str(torch.__version__),
        saved_utc=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    dropout = getattr(getattr(model, "dropout", None), "p", 0.5)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "model_kwargs": {"dropout": float(dropout)},
        "metadata": meta,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _read(path: Path) -> Any:
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; give the .pt file inside it")
    if not path.is_file():  # a pipe or device: reading could block forever
        raise CheckpointError(f"checkpoint {path} is not a regular file (a pipe or device); "
                              "give the .pt file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        size = path.stat().st_size
        text = str(exc)
        detail = next((ln.strip() for ln in text.splitlines() if "Unsupported global" in ln), "")
        if "Unsupported global" in text:
            # A well-formed pickle naming classes or functions: never loaded, never run.
            raise CheckpointError(
                f"{path} holds Python objects that are not allowed in a checkpoint "
                f"(refused for safety: {detail[:200]}); it was not written by glue-ssclump"
                " - save the model again with save_checkpoint / ssclump train"
            ) from exc
        first = text.strip().splitlines()[0][:120] if text.strip() else ""
        reason = type(exc).__name__
        if first and not first.startswith("Weights only load failed"):
            reason += f": {first}"
        raise CheckpointError(
            f"{path} ({size} bytes) is not a readable PyTorch file - corrupted or truncated "
            f"({reason}); copy it again or retrain and save the model"
        ) from exc


def _check_payload(obj: Any, path: Path) -> dict:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        hint = ""
        if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor)
                                                 for v in obj.values()):
            hint = " (it looks like a bare state_dict)"
        raise CheckpointError(
            f"{path} is a PyTorch file but not a glue-ssclump checkpoint{hint}; load a file "
            "written by save_checkpoint / ssclump train, or rebuild one with save_checkpoint"
        )
    version = obj.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format {version!r}; this glue-ssclump "
            f"({__version__}) reads format <= {FORMAT_VERSION} - upgrade glue-ssclump"
        )
    meta = obj.get("metadata")
    state = obj.get("state_dict")
    if not isinstance(meta, dict) or not isinstance(state, dict):
        raise CheckpointError(
            f"{path} is damaged: metadata or weights are missing; retrain and save the model"
        )
    arch = meta.get("arch_version")
    known = {version for _, version in ARCHS.values()} | {ENSEMBLE_ARCH_VERSION}
    if arch not in known:
        saved_with = meta.get("package_version", "an unknown version")
        raise CheckpointError(
            f"{path} holds a model of architecture {arch!r} (saved by glue-ssclump "
            f"{saved_with}) but this version builds {ARCH_VERSION!r}; {_RETRAIN} with "
            f"glue-ssclump {saved_with}"
        )
    size = meta.get("input_size")
    if size != INPUT_SIZE:
        raise CheckpointError(
            f"{path} was trained on {size}^3 samples but this version uses "
            f"{INPUT_SIZE}^3; {_RETRAIN}"
        )
    norm = meta.get("normalisation", NORMALISATION)
    if norm != NORMALISATION:
        raise CheckpointError(
            f"{path} expects {norm!r}-normalised samples but glue-ssclump produces "
            f"{NORMALISATION!r} ones; {_RETRAIN}"
        )
    return obj


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"
                    ) -> tuple[SSClumpNet | EnsembleNet, dict]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or PathLike
        The checkpoint file.
    device : str or torch.device
        Where to put the model (``"auto"``, ``"cpu"``, ``"cuda"``, ...).

    Returns
    -------
    model : SSClumpNet or EnsembleNet
        In eval mode, on ``device``.
    metadata : dict
        Everything saved: the caller's entries plus ``arch_version``, ``input_size``,
        ``normalisation``, ``package_version``, ``torch_version``, ``saved_utc``.

    Raises
    ------
    CheckpointError
        Missing, truncated, corrupted or foreign file; other architecture, sample size
        or normalisation; tensors of the wrong shape or missing; NaN/inf weights.
    """
    path = Path(path)
    payload = _check_payload(_read(path), path)
    state = payload["state_dict"]
    kwargs = payload.get("model_kwargs") or {}
    dropout = kwargs.get("dropout", 0.5)
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise CheckpointError(f"{path} is damaged: invalid dropout {dropout!r}; retrain")
    # Checkpoints written before the 'arch' field existed hold the paper's network.
    version = payload["metadata"]["arch_version"]
    if version == ENSEMBLE_ARCH_VERSION:
        name, model = "ensemble", EnsembleNet()
    else:
        name = next(a for a, (_, v) in ARCHS.items() if v == version)
        model = SSClumpNet(dropout=float(dropout), in_channels=ARCHS[name][0])

    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != v.shape
    ]
    not_tensor = sorted(k for k in set(expected) & set(state)
                        if not isinstance(state[k], torch.Tensor))
    if missing or unexpected or wrong or not_tensor:
        parts = []
        if wrong:
            parts.append("wrong tensor shapes (" + "; ".join(wrong[:4]) + ")")
        if missing:
            parts.append(f"missing weights {missing[:4]}")
        if unexpected:
            parts.append(f"unexpected weights {unexpected[:4]}")
        if not_tensor:
            parts.append(f"non-tensor weights {not_tensor[:4]}")
        raise CheckpointError(
            f"{path} does not match the {model.arch_version!r} network: {', '.join(parts)}; "
            f"it was saved from a different or modified model - {_RETRAIN}"
        )
    bad = [k for k, v in state.items()
           if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(
            f"{path} has NaN or infinite weights in {bad[:4]} (training diverged); retrain "
            "with a smaller learning rate"
        )
    model.load_state_dict(state, strict=True)
    model.to(resolve_device(device))
    model.eval()
    meta = dict(payload["metadata"])
    meta.setdefault("arch", name)
    return model, meta
