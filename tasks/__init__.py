"""Task plugins, one file per task family; importable as `avbench.tasks`."""
