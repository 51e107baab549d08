"""Peak resident memory of single runs, each in a fresh process.

    python -m bench.memory                   # the default run
    python -m bench.memory -- --d 4096 ...   # any flags of `quadviz simulate`

Runs ``python -m quadviz simulate`` with the given flags in a child process
and prints its peak resident set size (ru_maxrss of the child), with the
same figure for a child that only imports the engine, so the run's own share
can be read off.
"""

from __future__ import annotations

import resource
import subprocess
import sys


def child_peak_mib(args: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest of all waited-for children so far
    return max(before, after) / 1024


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    base = child_peak_mib(["-c", "import quadviz.experiment"])
    run = child_peak_mib(["-m", "quadviz", "simulate", *argv])
    flags = " ".join(argv) or "(defaults)"
    print(f"import only: {base:.0f} MiB; simulate {flags}: {run:.0f} MiB peak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
