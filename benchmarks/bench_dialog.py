"""Training throughput through the Qt worker vs the headless pipeline.

Run with ``QT_QPA_PLATFORM=offscreen python benchmarks/bench_dialog.py`` (``--repeat N``,
``--epochs N``, ``--clumps N`` change the work; the default trains about 100 candidates
for 4 epochs of 2 passes on the CPU, a few seconds per run).  The same candidates
(ClumpFind on a synthetic cube), seeds and
:class:`~glue_ssclump.core.training.TrainConfig` are trained and verified

1. headless: ``pipeline.verify`` called directly on the main thread (as the CLI does);
2. headless on a plain ``threading.Thread`` (no Qt), which separates the effect of
   running torch off the main thread from the cost of the Qt machinery;
3. through the dialog's path: :func:`glue_ssclump.core.jobs.run_job` on a
   :class:`glue_ssclump.qt.worker.Worker` thread while the main thread runs the Qt event
   loop, the progress signal drives a progress bar and every epoch record reaches a
   :class:`~glue_ssclump.qt.live_plots.LivePlots` through the ``reported`` signal
   (what the dialog does; nothing is saved in either path).

Runs alternate (headless, thread, worker, headless, ...) so that drifting machine load
hits all alike; the medians of the wall times, candidate-epochs per second and the
ratios are printed.  The target is a worker/headless time ratio of at most 1.10.

On a machine with more runnable threads than cores, torch's OpenMP threads spin in
their barriers and the main-thread run can be several times slower than the same run
on a secondary thread; ``OMP_NUM_THREADS=1`` removes that effect from the comparison.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a plain script from any directory
    sys.path.insert(0, str(ROOT))

from qtpy import QtCore, QtWidgets  # noqa: E402

from glue_ssclump.core.cube import cube_from_array  # noqa: E402
from glue_ssclump.core.jobs import TrainJob, run_job  # noqa: E402
from glue_ssclump.core.pipeline import verify  # noqa: E402
from glue_ssclump.core.synthetic import make_synthetic_cube  # noqa: E402
from glue_ssclump.core.training import TrainConfig  # noqa: E402
from glue_ssclump.integration.factory import compute_candidates  # noqa: E402
from glue_ssclump.qt.live_plots import LivePlots  # noqa: E402
from glue_ssclump.qt.worker import ProgressBinding, Worker  # noqa: E402

TARGET_RATIO = 1.10


def make_job(n_clumps: int, epochs: int, seed: int = 1) -> TrainJob:
    """Candidates of a synthetic cube, the 30 % brightest / faintest as seeds."""
    side = int(round((n_clumps * 1000 / 1.2) ** (1 / 3) / 4)) * 4
    shape = (max(side // 2, 16), max(side, 32), max(side, 32))
    data, header, _ = make_synthetic_cube(shape, n_clumps=n_clumps, seed=seed,
                                          preset="clean")
    cube = cube_from_array(data, header)
    mask, table = compute_candidates(cube, "clumpfind")
    snr = np.asarray(table["snr_peak"], dtype=float)
    order = np.argsort(snr)
    k = max(len(table) * 3 // 10, 5)
    codes = np.full(len(table), -1, dtype=np.int64)
    codes[order[-k:]] = 1
    codes[order[:k]] = 0
    config = TrainConfig(epochs=epochs, passes=2, batch_size=32, device="cpu", seed=0)
    return TrainJob(data=cube.data, mask=mask, catalog=table, codes=codes,
                    config=config, init="scratch", train=True, out_dir=None)


def dialog_widgets() -> tuple[QtWidgets.QApplication, QtWidgets.QWidget, LivePlots,
                              QtWidgets.QProgressBar, QtWidgets.QLabel]:
    """The widgets a training run drives in the dialog (live plots, progress bar and
    status label) in a shown window: ``(app, window, plots, bar, label)``."""
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    window = QtWidgets.QWidget()
    layout = QtWidgets.QVBoxLayout(window)
    plots, bar, label = LivePlots(), QtWidgets.QProgressBar(), QtWidgets.QLabel()
    for w in (plots, bar, label):
        layout.addWidget(w)
    window.resize(700, 560)
    window.show()
    app.processEvents()
    return app, window, plots, bar, label


def headless(job: TrainJob) -> float:
    t0 = time.perf_counter()
    v = verify(job.data, job.mask, job.catalog, job.codes, config=job.config,
               init=job.init, train_model=True)
    assert v.train_result is not None and v.train_result.completed_epochs == job.config.epochs
    return time.perf_counter() - t0


def on_thread(job: TrainJob) -> float:
    out: dict[str, float] = {}
    thread = threading.Thread(target=lambda: out.setdefault("t", headless(job)))
    thread.start()
    thread.join()
    return out["t"]


def through_worker(job: TrainJob, app: QtWidgets.QApplication, plots: LivePlots,
                   bar: QtWidgets.QProgressBar, label: QtWidgets.QLabel) -> float:
    plots.start(job.config.epochs, len(job.catalog), False)
    worker = Worker(run_job, job, report_kwarg="on_epoch")
    worker.reported.connect(plots.add_record)
    ProgressBinding(worker, bar, label, final_text=False)
    # A real event loop (it sleeps when idle, as glue's does), not a processEvents poll.
    loop = QtCore.QEventLoop()
    worker.done.connect(loop.quit)
    t0 = time.perf_counter()
    worker.start()
    loop.exec_()
    elapsed = time.perf_counter() - t0
    if worker.outcome != "succeeded":
        raise RuntimeError(f"worker run {worker.outcome}: {worker.error}")
    assert len(plots.records) == job.config.epochs
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each path")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--clumps", type=int, default=200,
                        help="injected clumps (200 give about 100 candidates)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", UserWarning)

    app, window, plots, bar, label = dialog_widgets()

    job = make_job(args.clumps, args.epochs)
    n = len(job.catalog)
    print(f"{n} candidates, {int(np.sum(job.codes >= 0))} seeds, {args.epochs} epochs x "
          f"{job.config.passes} passes, batch {job.config.batch_size}, CPU "
          f"(torch threads: {__import__('torch').get_num_threads()})")
    # Warm-up (imports, allocator, first-use costs) in every path, not timed.
    headless(job)
    on_thread(job)
    through_worker(job, app, plots, bar, label)

    times: dict[str, list[float]] = {"headless": [], "thread": [], "worker": []}
    for i in range(args.repeat):
        times["headless"].append(headless(job))
        times["thread"].append(on_thread(job))
        times["worker"].append(through_worker(job, app, plots, bar, label))
        print(f"  run {i + 1}: headless {times['headless'][-1]:.2f} s, plain thread "
              f"{times['thread'][-1]:.2f} s, Qt worker {times['worker'][-1]:.2f} s")
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: n * args.epochs / v for k, v in med.items()}
    ratio = med["worker"] / med["headless"]
    print(f"headless pipeline.verify (main thread): median {med['headless']:.2f} s "
          f"({rate['headless']:.1f} candidate-epochs/s)")
    print(f"headless on a plain thread           : median {med['thread']:.2f} s "
          f"({rate['thread']:.1f} candidate-epochs/s)")
    print(f"Qt worker (dialog path)              : median {med['worker']:.2f} s "
          f"({rate['worker']:.1f} candidate-epochs/s)")
    print(f"ratio worker / headless : {ratio:.3f}  (target <= {TARGET_RATIO:.2f}: "
          f"{'ok' if ratio <= TARGET_RATIO else 'MISSED'})")
    print(f"ratio worker / thread   : {med['worker'] / med['thread']:.3f}  (the Qt machinery)")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
