"""The MLP that maps Q-Former outputs into the LLM's embedding space.

Crab (GeWu-Lab/Crab `models/multimodal_encoder.py`, `build_mlp`): depth 2 = Linear(in, d), GELU,
Linear(d, d); a plain `nn.Sequential`, so the official keys are `<name>.0.*` and `<name>.2.*`.
"""

from __future__ import annotations

from torch import nn


def build_projector(depth: int, in_features: int, out_features: int) -> nn.Sequential:
    """Linear, then (GELU, Linear) x (depth - 1)."""
    if depth < 1:
        raise ValueError(f"projector depth must be >= 1, got {depth}")
    layers: list[nn.Module] = [nn.Linear(in_features, out_features)]
    for _ in range(1, depth):
        layers += [nn.GELU(), nn.Linear(out_features, out_features)]
    return nn.Sequential(*layers)
