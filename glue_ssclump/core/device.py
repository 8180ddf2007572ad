"""Choosing the torch device for training and inference.

``"auto"`` picks CUDA when a usable GPU is present and falls back to the CPU, so the
same call works on a laptop and on a GPU node.  Asking explicitly for a device that is
not there fails at once with a message that says what to do, instead of deep inside a
training loop.
"""

from __future__ import annotations

import os

import torch

__all__ = ["resolve_device", "describe_device"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn a user's device choice into a :class:`torch.device`.

    Parameters
    ----------
    device : str, torch.device or None
        ``"auto"`` (or None): CUDA when available, else CPU.  ``"cpu"``, ``"cuda"``,
        ``"cuda:1"``, ``"mps"`` or a :class:`torch.device` are taken as given after
        checking that the device exists.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        For an unknown device string, or a CUDA / MPS device that this machine or this
        torch build does not have.
    """
    if device is None:
        device = "auto"
    if isinstance(device, torch.device):
        dev = device
    else:
        name = str(device).strip().lower()
        if name == "auto":
            return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
        if name == "gpu":
            name = "cuda"
        try:
            dev = torch.device(name)
        except RuntimeError as exc:
            raise ValueError(
                f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'"
            ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only torch build" if torch.version.cuda is None else "no visible GPU"
            raise ValueError(
                f"device {str(dev)!r} requested but CUDA is not available ({build}); "
                "use device='cpu' or 'auto', or install a CUDA build of torch on a GPU machine"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(dev)!r} requested but only {torch.cuda.device_count()} CUDA "
                "device(s) are visible; pick a smaller index or check CUDA_VISIBLE_DEVICES"
            )
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError("device 'mps' requested but it is not available; use 'cpu' or 'auto'")
    elif dev.type != "cpu":
        raise ValueError(f"unsupported device {str(dev)!r}: use 'auto', 'cpu' or 'cuda'")
    return dev


def describe_device(dev: str | torch.device) -> str:
    """A one-line human description of ``dev`` for user interfaces and logs.

    Parameters
    ----------
    dev : str or torch.device
        A device, or a device string accepted by :func:`resolve_device`.

    Returns
    -------
    str
        e.g. ``"CUDA 0: NVIDIA H100 80GB HBM3 (79.1 GiB)"`` or ``"CPU (2 threads)"``.
    """
    dev = resolve_device(dev)
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"CUDA {index}: {props.name} ({props.total_memory / 2**30:.1f} GiB)"
    if dev.type == "mps":
        return "Apple MPS"
    cores = os.cpu_count() or 1
    return f"CPU ({torch.get_num_threads()} threads, {cores} cores)"
