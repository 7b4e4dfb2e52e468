"""`python -m avbench.lm_eval ARGS`: lm-evaluation-harness's own command line, with avbench's model types registered.

lm-eval 0.4 (`lm_eval/api/registry.py`) knows its built-in models from a table in `lm_eval.models` and
never looks at installed packages' entry points, so `lm_eval --model avbench-crab` cannot find a model
that lives in avbench. This module registers ours (as a lazy "module:Class" placeholder, so `--help`
imports no torch) and hands the unchanged arguments to lm-eval's `cli_evaluate`: every lm-eval option
works as documented by lm-eval. Example (docs/lm-eval.md):

    python -m avbench.lm_eval --model avbench-crab --model_args checkpoint=DIR --tasks hellaswag --device cpu

From Python, `import avbench.adapters.crab.lm_eval_model` registers the model type as well, for
`lm_eval.simple_evaluate(model="avbench-crab", ...)`.
"""

from __future__ import annotations

import sys
from typing import Sequence

from .errors import AVBenchError

#: lm-eval model type -> the class, as lm-eval's registry takes a lazy placeholder.
MODEL_TYPES = {"avbench-crab": "avbench.adapters.crab.lm_eval_model:CrabLM"}


def register() -> None:
    """Add avbench's model types to lm-eval's model registry (idempotent)."""
    # lm-eval fills its registry with the built-in models only while the registry is empty: load them first,
    # or registering ours would hide `hf` and the rest
    import lm_eval.models  # noqa: F401
    from lm_eval.api.registry import model_registry

    for name, target in MODEL_TYPES.items():
        if name not in model_registry:
            model_registry.register(name, target=target)


def main(argv: Sequence[str] | None = None) -> None:
    """Run lm-eval's command line on `argv` (default: this process's arguments)."""
    register()
    from lm_eval.__main__ import cli_evaluate

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]  # lm-eval's parser reads sys.argv itself
    try:
        cli_evaluate()
    except AVBenchError as exc:  # ours (a missing checkpoint, a bad model_arg): one line, as avbench's CLI
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
