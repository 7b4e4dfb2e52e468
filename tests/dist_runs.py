"""Several `avbench run` command lines in one process, for one data-parallel launch in the tests.

    python -m torch.distributed.run --nproc_per_node 2 tests/dist_runs.py '[["run", "--model", "random", ...], ...]'

Each command line goes through the real CLI (`avbench.cli.app`), in order, in the same process group
(torch and the models are imported once per rank instead of once per launch: each launch costs seconds).
A command that fails does not stop the next; each rank prints `exit codes: [...]` at the end.
"""

from __future__ import annotations

import json
import sys

import torch

from avbench.cli import app


def main() -> None:
    torch.set_num_threads(1)  # two ranks on a 2-core machine
    codes = []
    for args in json.loads(sys.argv[1]):
        try:
            code = app(args, standalone_mode=False)
        except SystemExit as exc:  # typer.Exit from a failed run
            code = exc.code
        codes.append(int(code or 0))
    print(f"exit codes: {codes}", flush=True)


if __name__ == "__main__":
    main()
