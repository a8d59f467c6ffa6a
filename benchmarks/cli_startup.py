"""Start-up time of assay's read-only commands, against a bare interpreter and a 1 s budget.

A command that only reads the registry (``assay models``, ``history``, ``token list``) or prints
help should answer at once; it must not load pandas, scikit-learn or Alembic on the way. This
builds a small project with one registered version, then runs each command ``--repeat`` times
as a subprocess and prints the median wall and CPU time, the ratio to ``python -c pass`` (the
floor: interpreter start-up) and to the 1 s anchor that a user notices.

    .venv/bin/python benchmarks/cli_startup.py [--repeat 7] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ASSAY = [sys.executable, "-m", "assay"]
COMMANDS = {
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
    "assay --version": [*ASSAY, "--version"],
    "assay --help": [*ASSAY, "--help"],
    "assay models": [*ASSAY, "models"],
    "assay history": [*ASSAY, "history"],
    "assay token list": [*ASSAY, "token", "list"],
}
ANCHOR_SECONDS = 1.0


def _project(folder: Path) -> None:
    from sklearn.datasets import load_breast_cancer

    load_breast_cancer(as_frame=True).frame.to_csv(folder / "data.csv", index=False)
    subprocess.run([*ASSAY, "init", "data.csv", "--target", "target"], cwd=folder, check=True,
                   capture_output=True)
    config = folder / "assay.yaml"
    text = config.read_text(encoding="utf-8")
    lines = [
        "  families: [dummy, linear]" if line.startswith("  families:") else line
        for line in text.splitlines()
    ]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # exit 1 is a gate that failed (a busy machine can miss the latency SLA): still registered
    done = subprocess.run([*ASSAY, "run"], cwd=folder, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"assay run failed: {done.stderr[-2000:]}")


def _time(command: list[str], folder: Path, repeat: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, cwd=folder, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--workdir", type=Path, help="keep the project here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.workdir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        _project(folder)
        rows = {name: _time(cmd, folder, args.repeat) for name, cmd in COMMANDS.items()}
    floor = rows["python -c pass (floor)"][0]
    print(f"{'command':<26} {'wall s':>8} {'cpu s':>7} {'x floor':>8} {'x 1 s':>6}")
    worst = 0.0
    for name, (wall, cpu) in rows.items():
        print(f"{name:<26} {wall:>8.3f} {cpu:>7.3f} {wall / floor:>8.1f} {wall / ANCHOR_SECONDS:>6.2f}")
        if not name.startswith("python"):
            worst = max(worst, wall)
    print(f"slowest read-only command: {worst:.3f} s ({worst / ANCHOR_SECONDS:.2f}x the 1 s anchor)")
    return 0 if worst < ANCHOR_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
