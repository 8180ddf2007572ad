"""What training and inference read samples from: :class:`SampleSource` and its arrays.

A source hands out samples by position, in batches, optionally built ahead by a
background thread; :class:`ArraySamples` holds samples already in memory, and
:class:`~glue_ssclump.core.samples.CandidateSamples` builds them from a cube and its
mask.
"""

from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import numpy as np

from .progress import Progress, ensure_progress
from .sample_build import SAMPLE_SIZE

__all__ = ["ArraySamples", "SampleSource"]


class SampleSource(ABC):
    """What training and inference consume: ``len(src)`` samples with clump ids ``src.ids``.

    ``get(index)`` returns ``(len(index), 1, 30, 30, 30)`` float32 in [0, 1];
    ``batches`` iterates over them in chunks (optionally producing the next chunk in a
    background thread while the caller works on the current one).
    """

    ids: np.ndarray
    #: Batches produced ahead by a background thread when ``batches(prefetch=None)``.
    default_prefetch: int = 0

    def __len__(self) -> int:
        return int(len(self.ids))

    @abstractmethod
    def get(self, index: Any) -> np.ndarray:
        """Samples at positions ``index`` (not clump ids): ``(n, 1, 30, 30, 30)`` float32."""

    def batches(
        self,
        batch_size: int,
        index: Any = None,
        progress: Progress | None = None,
        *,
        prefetch: int | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Iterate ``(index_chunk, samples)`` over ``index`` (default: all) in order.

        Parameters
        ----------
        batch_size : int
            Samples per batch (the last one may be shorter).
        index : array of int, optional
            Positions to visit, in this order; default ``arange(len(self))``.
        progress : Progress, optional
            Updated once per batch; cancelling stops the iteration (``Cancelled``).
        prefetch : int, optional
            Batches a background thread builds ahead (0 = build on demand). The
            generator's memory is about ``(prefetch + 2) * batch_size * 108 kB``.

        Yields
        ------
        (ndarray, ndarray)
            The positions (int64) and their samples ``(n, 1, 30, 30, 30)`` float32.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        index = np.arange(len(self)) if index is None else _as_index(index, len(self))
        chunks = [index[i:i + batch_size] for i in range(0, index.size, batch_size)]
        progress = ensure_progress(progress)
        prefetch = self.default_prefetch if prefetch is None else int(prefetch)
        progress.update(0.0)
        if prefetch <= 0:
            for k, chunk in enumerate(chunks):
                batch = self.get(chunk)
                yield chunk, batch
                progress.update((k + 1) / len(chunks))
            return
        yield from self._prefetched(chunks, prefetch, progress)

    def _prefetched(
        self, chunks: list[np.ndarray], prefetch: int, progress: Progress
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        q: queue.Queue = queue.Queue(maxsize=prefetch)
        stop = threading.Event()

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def worker() -> None:
            try:
                for chunk in chunks:
                    if stop.is_set() or progress.cancelled:
                        return
                    if not put((chunk, self.get(chunk), None)):
                        return
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                put((None, None, exc))
                return
            put(None)

        thread = threading.Thread(target=worker, name="ssclump-samples", daemon=True)
        thread.start()
        try:
            for k in range(len(chunks)):
                while True:
                    progress.check()
                    try:
                        item = q.get(timeout=0.1)
                        break
                    except queue.Empty:
                        if not thread.is_alive() and q.empty():
                            raise RuntimeError("sample generation thread stopped") from None
                if item is None:
                    break
                chunk, batch, exc = item
                if exc is not None:
                    raise exc
                yield chunk, batch
                progress.update((k + 1) / len(chunks))
        finally:
            stop.set()
            thread.join()


def _as_index(index: Any, n: int) -> np.ndarray:
    index = np.atleast_1d(np.asarray(index))
    if index.dtype == bool:
        if index.shape != (n,):
            raise IndexError(f"boolean index of shape {index.shape} for {n} samples")
        return np.flatnonzero(index)
    if index.size == 0:
        return index.astype(np.int64)
    if not np.issubdtype(index.dtype, np.integer):
        raise IndexError(f"sample index must be integers, got dtype {index.dtype}")
    index = index.astype(np.int64).ravel()
    if index.min() < -n or index.max() >= n:
        raise IndexError(f"sample index out of range for {n} samples")
    return np.where(index < 0, index + n, index)


class ArraySamples(SampleSource):
    """Samples already in memory.

    Parameters
    ----------
    array : ndarray
        ``(N, 1, 30, 30, 30)`` or ``(N, 30, 30, 30)``; kept as given (float16 is fine),
        returned as float32.
    ids : array of int, optional
        Clump ids; default ``1..N``.
    """

    def __init__(self, array: np.ndarray, ids: np.ndarray | None = None) -> None:
        array = np.asarray(array)
        s = SAMPLE_SIZE
        if array.ndim == 4 and array.shape[1:] == (s, s, s):
            array = array[:, None]
        if array.ndim != 5 or array.shape[1:] != (1, s, s, s):
            raise ValueError(f"expected samples of shape (N, 1, {s}, {s}, {s}), got {array.shape}")
        self.array = array
        self.ids = (
            np.arange(1, len(array) + 1, dtype=np.int64)
            if ids is None
            else np.asarray(ids, dtype=np.int64)
        )
        if self.ids.shape != (len(array),):
            raise ValueError(f"{len(self.ids)} ids for {len(array)} samples")

    def get(self, index: Any) -> np.ndarray:
        return self.array[_as_index(index, len(self))].astype(np.float32)
