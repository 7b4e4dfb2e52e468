"""I-LoRA fused layer vs the per-head formulation of the public Crab code, forward + backward.

Issue size (AVBENCH_BENCH_FULL=1): r 8, 3 heads, hidden 4096, sequence 512; default (and the
`--benchmark-disable` test run): hidden 1024, sequence 256. Two pairs, each fused vs naive:
- `ilora-layer-*`: the whole adapted linear, frozen W x included (what a model pays);
- `ilora-adapter-*`: the adapter term alone (base replaced by zeros), the part I-LoRA changes,
  with dropout off (identical maths) and at Crab's 0.05 in training (naive: one mask per head).
Measure: python -m pytest tests/benchmarks/test_bench_ilora.py --benchmark-enable -p no:cacheprovider
"""

from __future__ import annotations

import os

import pytest
import torch
from crab.test_ilora import naive_ilora_forward  # the reference lives with the equivalence tests
from torch import nn

from avbench.adapters.crab.ilora import ILoRALinear

FULL = os.environ.get("AVBENCH_BENCH_FULL") == "1"
HIDDEN, SEQ = (4096, 512) if FULL else (1024, 256)
R, HEADS = 8, 3


class ZeroLinear(nn.Linear):
    """A base layer that costs nothing, to time the adapter term on its own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(*x.shape[:-1], self.out_features)


def make_layer(base_cls: type[nn.Linear], dropout: float) -> ILoRALinear:
    torch.manual_seed(0)
    layer = ILoRALinear(base_cls(HIDDEN, HIDDEN), r=R, lora_alpha=16, lora_dropout=dropout, n_heads=HEADS).train()
    with torch.no_grad():
        layer.lora_B["default"].weight.normal_(std=0.02)
    return layer


def run_pair(benchmark, variant: str, base_cls: type[nn.Linear], dropout: float) -> None:
    layer = make_layer(base_cls, dropout)
    x = torch.randn(1, SEQ, HIDDEN, requires_grad=True)  # gradients flow on to earlier layers
    upstream = torch.randn(1, SEQ, HIDDEN)
    forward = layer if variant == "fused" else (lambda inp: naive_ilora_forward(layer, inp))
    if dropout == 0.0:  # same maths: the timed functions must agree before their times mean anything
        torch.testing.assert_close(layer(x), naive_ilora_forward(layer, x), rtol=1e-4, atol=1e-4)

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        forward(x).backward(upstream)

    benchmark.extra_info.update(hidden=HIDDEN, seq=SEQ, r=R, heads=HEADS, dropout=dropout)
    benchmark(step)
    assert layer.lora_A["default"].weight.grad is not None and x.grad is not None


@pytest.mark.parametrize("variant", ["fused", "naive"])
def test_bench_ilora_layer(benchmark, variant: str) -> None:
    benchmark.group = f"ilora-layer-h{HIDDEN}-s{SEQ}"
    run_pair(benchmark, variant, nn.Linear, dropout=0.0)


@pytest.mark.parametrize("dropout", [0.0, 0.05])
@pytest.mark.parametrize("variant", ["fused", "naive"])
def test_bench_ilora_adapter(benchmark, variant: str, dropout: float) -> None:
    benchmark.group = f"ilora-adapter-h{HIDDEN}-s{SEQ}-p{dropout}"
    run_pair(benchmark, variant, ZeroLinear, dropout=dropout)
