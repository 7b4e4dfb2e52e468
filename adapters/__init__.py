"""Model adapters, one file per model family; importable as `avbench.adapters`."""
