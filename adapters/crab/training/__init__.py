"""Training the Crab-style model: instruction data, the staged recipe, the loop (docs/training.md)."""
