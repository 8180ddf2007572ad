"""Choosing the torch device for training and inference.

``"auto"`` picks CUDA when a usable GPU is present and falls back to the CPU, so the
same call works on a laptop and on a GPU node.  Asking explicitly for a device that is
not there fails at once with a message that says what to do, instead of deep inside a
training loop.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

import torch

__all__ = ["resolve_device", "describe_device", "tune_cpu_allocator"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_allocator_tuned: bool | None = None


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


def tune_cpu_allocator(mmap_threshold: int = 256 * 2**20,
                       trim_threshold: int = 1024 * 2**20) -> bool:
    """Stop glibc from handing every large tensor buffer back to the OS (Linux only).

    By default glibc serves allocations above 32 MiB with a fresh ``mmap`` and unmaps
    them on free, so each batch's activation tensors (tens of MiB for a batch of 128)
    are page-faulted in again, zero-filled by the kernel: on a small VM the page
    faults, not the arithmetic, then set the network's speed
    (``benchmarks/bench_model_speed.py`` measures it).  Raising the mmap and trim thresholds
    (``mallopt``) lets freed buffers be reused from the heap.  The price is that up to
    ``trim_threshold`` bytes of freed memory stay with the process.

    Idempotent; does nothing off glibc, or when the environment variable
    ``GLUE_SSCLUMP_NO_MALLOC_TUNING`` is set.

    Parameters
    ----------
    mmap_threshold : int
        Allocations at least this large still get their own mapping.
    trim_threshold : int
        Free memory at the top of the heap beyond this is returned to the OS.

    Returns
    -------
    bool
        True if the thresholds are (now) set.
    """
    global _allocator_tuned
    if _allocator_tuned is not None:
        return _allocator_tuned
    _allocator_tuned = False
    if not sys.platform.startswith("linux") or os.environ.get("GLUE_SSCLUMP_NO_MALLOC_TUNING"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    cap = 2**31 - 1
    ok = mallopt(_M_MMAP_THRESHOLD, min(int(mmap_threshold), cap)) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, min(int(trim_threshold), cap)) == 1 and ok
    _allocator_tuned = ok
    return ok
