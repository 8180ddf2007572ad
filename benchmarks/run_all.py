"""Run every benchmark, one after another, in one command (`make bench`).

Each script prints its own figures and ratios (to CUPID's recorded times, to the FLOP
bound and eager baseline measured in the same run, to the targets of the issues).
Speed and memory are measured here, never in timed tests.

    python benchmarks/run_all.py [--quick] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (name, script, arguments, quick arguments)
BENCHMARKS = [
    ("clumpfind", "bench_clumpfind.py", [], ["--skip-large"]),
    ("fellwalker", "bench_fellwalker.py", [], ["--skip-big"]),
    ("samples", "bench_samples.py", [], ["--quick"]),
    ("model_speed", "bench_model_speed.py", [], ["--quick"]),
    ("glue", "bench_glue.py", [], ["--repeat", "5"]),
    ("viewer", "bench_viewer.py", [], ["--steps", "30"]),
    ("dialog", "bench_dialog.py", [], ["--repeat", "1"]),
    ("accuracy", "bench_accuracy.py", [], ["--runs", "1", "--skip-real"]),
    # the default verifier on the morphology truth (inference only: --paper-runs 0)
    ("accuracy_morph", "bench_accuracy.py",
     ["--preset", "morph_hard", "--paper-runs", "0", "--ft-runs", "0"],
     ["--preset", "morph_hard", "--paper-runs", "0", "--ft-runs", "0", "--cubes", "1",
      "--runs", "1"]),
    ("ensemble_grid", "bench_ensemble_grid.py", [], []),
    ("galaxy", "bench_galaxy.py", [], ["--quick", "--json", "/tmp/galaxy_quick.json"]),
    ("survey", "bench_survey.py", [], ["--quick", "--out-name", "survey_quick_runall"]),
    ("gui_latency", "bench_gui_latency.py", [], ["--runs", "2", "--epochs", "1"]),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller versions of each")
    ap.add_argument("--only", nargs="*", default=None, help="names to run")
    args = ap.parse_args()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", GLUE_TESTING="True",
               MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    failed = []
    for name, script, full, quick in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        if not (HERE / script).is_file():
            continue
        cmd = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, env=env)
        print(f"=== {name}: exit {rc}, {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
