"""Interaction-aware LoRA (I-LoRA), Crab's multi-head LoRA, as a peft LoRA layer.

For every adapted linear layer: one shared down-projection A (in→r), N up-projections B_1..B_N (r→out)
and a router R (in→N) whose per-token softmax weights the heads:

    y = W x + b + (α/r) · Σ_i softmax(R x)_i · B_i(A(dropout(x)))

Reference: Crab (CVPR 2025, arXiv 2503.13068) and its public code, GeWu-Lab/Crab
`peft_hyper/tuners/lora.py` (class `Linear`): router `lora_route` (in→N, no bias, kaiming-uniform
init, softmax in float32 on the undropped input), shared `lora_A` (kaiming-uniform), heads
`lora_B0..lora_B{N-1}` (zero init), scaling `lora_alpha / r`. That code recomputes A(x) once per head;
here A(x) is computed once and the heads run as ONE matmul (see `ILoRALinear._mixed_hidden`).

Layout (why it is the fast one): the N heads are stored as a single matrix B = [B_1 | … | B_N] of
shape (out, N·r). Since Σ_i w_i B_i h = B · vec(w ⊗ h), the router weights are applied to the tiny
rank-r hidden h (a (…, N, r) outer product, N·r = 24 numbers per token) *before* the up-projection,
and one (…, N·r) @ (N·r, out) product gives the weighted sum directly. The alternative — compute
every head's (…, out) output and reduce with an einsum — materialises an (…, N, out) tensor, N times
the size of the layer's output, and reads it back; mixing first never does. In eval mode (or with
dropout 0) A and R also share one pass over x (their weights are concatenated, (r+N) rows).

peft integration: `ILoRAPeftConfig` is a `peft.LoraConfig` with an `n_heads` field that registers
`ILoRALinear` as the LoRA layer for `nn.Linear` through peft's custom-module hook
(`LoraConfig._register_custom_module`, experimental in peft 0.21). `get_peft_model` therefore wraps
the targets, marks only adapter weights trainable, and `save_pretrained` writes only adapter weights
(adapter_model.safetensors + adapter_config.json with `n_heads`). peft does not persist the custom-
module mapping, so loading goes through `load_ilora_pretrained(base, dir)` (a plain
`PeftModel.from_pretrained(base, dir)` builds ordinary LoRA layers and fails on the B shape).
A new peft *method* (`peft.utils.register_peft_method`) is not possible from outside peft: it
requires a member of the closed `PeftType` enum.

Saved key names equal the official release's for `lora_A` and `lora_route`; B differs (one fused
`lora_B.weight` here, `lora_B{i}.weight` per head there): `ilora_to_official` / `ilora_from_official`
convert whole state dicts, `official_ilora_key_map` lists the correspondence.
"""

from __future__ import annotations

import warnings

import contextlib
import dataclasses
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora.layer import LoraLayer
from torch import nn

from avbench.errors import AVBenchError

DEFAULT_TARGETS: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Prefix of every parameter in a checkpoint saved from a peft-wrapped model (official release and ours).
PEFT_PREFIX = "base_model.model."


class ILoRAError(AVBenchError):
    """Bad I-LoRA configuration, mask, adapter directory or state dict (missing/unexpected keys, shapes)."""


# --------------------------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class ILoRAConfig:
    """I-LoRA hyper-parameters; defaults are Crab's joint instruction tuning (r 8, α 16, dropout 0.05, 3 heads)."""

    r: int = 8
    alpha: float = 16
    dropout: float = 0.05
    n_heads: int = 3
    target_modules: tuple[str, ...] = DEFAULT_TARGETS

    def __post_init__(self) -> None:
        _validate(self.r, self.n_heads, self.dropout)
        if isinstance(self.target_modules, str) or not self.target_modules:
            raise ILoRAError(f"target_modules must be a non-empty sequence of names, got {self.target_modules!r}")
        object.__setattr__(self, "target_modules", tuple(self.target_modules))

    def to_peft(self) -> ILoRAPeftConfig:
        return ILoRAPeftConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            n_heads=self.n_heads,
            target_modules=list(self.target_modules),
            bias="none",
        )


def _validate(r: int, n_heads: int, dropout: float) -> None:
    if not isinstance(r, int) or r < 1:
        raise ILoRAError(f"I-LoRA rank r must be a positive integer, got {r!r}")
    if not isinstance(n_heads, int) or n_heads < 1:
        raise ILoRAError(f"I-LoRA n_heads must be a positive integer, got {n_heads!r}")
    if not 0.0 <= dropout < 1.0:
        raise ILoRAError(f"I-LoRA dropout must be in [0, 1), got {dropout!r}")


@dataclasses.dataclass
class ILoRAPeftConfig(LoraConfig):
    """A `peft.LoraConfig` whose `nn.Linear` targets become `ILoRALinear` with `n_heads` heads."""

    n_heads: int = dataclasses.field(default=3, metadata={"help": "number of I-LoRA heads B_i (Crab: 3)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        _validate(self.r, self.n_heads, self.lora_dropout)
        # Options of plain LoRA that have no I-LoRA meaning: refuse rather than silently ignore.
        unsupported = {
            "use_dora": self.use_dora,
            "use_rslora": self.use_rslora,
            "fan_in_fan_out": self.fan_in_fan_out,
            "lora_bias": self.lora_bias,
            "rank_pattern": bool(self.rank_pattern),
            "alpha_pattern": bool(self.alpha_pattern),
        }
        bad = [k for k, v in unsupported.items() if v]
        if bad or self.bias != "none":
            raise ILoRAError(f"I-LoRA does not support these LoRA options: {', '.join(bad or ['bias'])}")
        self._register_custom_module({nn.Linear: ILoRALinear})

    @classmethod
    def from_peft_type(cls, **kwargs: Any) -> ILoRAPeftConfig:
        # peft's version looks the class up by `peft_type` ("LORA" → plain LoraConfig); keep ours.
        kwargs.pop("peft_type", None)
        if "n_heads" not in kwargs:
            raise ILoRAError("adapter_config.json has no 'n_heads': this is not an I-LoRA adapter")
        return cls(**kwargs)


# ---------------------------------------------------------------------------------------------- layer


class ILoRALinear(nn.Module, LoraLayer):
    """A frozen `nn.Linear` plus I-LoRA adapters (peft LoRA-layer conventions: one entry per adapter name).

    Parameters per adapter: `lora_A[a]` (in→r), `lora_B[a]` (N·r→out, head i = columns i·r…(i+1)·r−1),
    `lora_route[a]` (in→N). Runtime state, not saved: `head_mask` (N,) buffer — 0 switches a head
    off — and `router_weights`, the last forward's softmax (…, N) while `record_router` is True;
    `router_history`, when a list (`record_router_history`), also collects every forward's softmax.
    """

    adapter_layer_names: tuple[str, ...] = ("lora_A", "lora_B", "lora_route")
    other_param_names: tuple[str, ...] = ("r", "lora_alpha", "scaling", "lora_dropout", "n_heads")

    def __init__(
        self,
        base_layer: nn.Module,
        adapter_name: str = "default",
        r: int = 8,
        lora_alpha: float = 16,
        lora_dropout: float = 0.05,
        n_heads: int = 3,
        *,
        config: LoraConfig | None = None,
        **kwargs: Any,
    ) -> None:
        nn.Module.__init__(self)
        LoraLayer.__init__(self, base_layer)
        if not isinstance(self.get_base_layer(), nn.Linear):
            raise ILoRAError(f"I-LoRA wraps nn.Linear layers only, got {type(self.get_base_layer()).__name__}")
        self.get_base_layer().requires_grad_(False)  # W and b stay frozen, also outside get_peft_model
        self.lora_route = nn.ModuleDict({})
        self.n_heads: dict[str, int] = {}
        self.register_buffer("head_mask", None, persistent=False)
        self.record_router = False
        self.router_weights: torch.Tensor | None = None
        self.router_history: list[torch.Tensor] | None = None
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, r, lora_alpha, lora_dropout=lora_dropout, n_heads=n_heads, config=config)

    def update_layer(
        self,
        adapter_name: str,
        r: int,
        lora_alpha: float,
        lora_dropout: float = 0.0,
        n_heads: int = 3,
        config: LoraConfig | None = None,
        **kwargs: Any,
    ) -> None:
        """Create (or re-create) adapter `adapter_name`; peft calls this for a second adapter on a wrapped layer."""
        if config is not None:
            lora_dropout, n_heads = config.lora_dropout, getattr(config, "n_heads", None)
            if n_heads is None:
                raise ILoRAError("an I-LoRA layer needs an ILoRAPeftConfig (with n_heads), got a plain LoraConfig")
        _validate(r, n_heads, lora_dropout)
        self.r[adapter_name] = r
        self.lora_alpha[adapter_name] = lora_alpha
        self.scaling[adapter_name] = lora_alpha / r
        self.n_heads[adapter_name] = n_heads
        self.lora_dropout[adapter_name] = nn.Dropout(p=lora_dropout) if lora_dropout > 0 else nn.Identity()
        self.lora_A[adapter_name] = nn.Linear(self.in_features, r, bias=False)
        self.lora_B[adapter_name] = nn.Linear(n_heads * r, self.out_features, bias=False)
        self.lora_route[adapter_name] = nn.Linear(self.in_features, n_heads, bias=False)
        self.reset_ilora_parameters(adapter_name)
        self._move_adapter_to_device_of_base_layer(adapter_name)
        self.set_adapter(self.active_adapters)

    def reset_ilora_parameters(self, adapter_name: str) -> None:
        """Crab's init: A and router kaiming-uniform (a=√5, nn.Linear's default), B zero → output equals base."""
        nn.init.kaiming_uniform_(self.lora_A[adapter_name].weight, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.lora_route[adapter_name].weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B[adapter_name].weight)

    # -- head mask ---------------------------------------------------------------------------------

    def set_head_mask(self, mask: Sequence[bool] | None) -> None:
        """Switch heads off (False) without renormalising the others: the output then equals the full
        output minus exactly the switched-off heads' terms w_i·B_i·A·x (zero-ablation), and all-off
        gives the base layer. Renormalising would also rescale the kept heads, and be 0/0 for all-off."""
        if mask is None:
            self.head_mask = None
            return
        n = self.n_heads[self._single_active_adapter()]
        values = list(mask)
        if len(values) != n or not all(isinstance(v, (bool, int)) and v in (0, 1) for v in values):
            raise ILoRAError(f"head mask must be {n} booleans (one per I-LoRA head), got {mask!r}")
        weight = self.lora_A[self._single_active_adapter()].weight
        self.head_mask = torch.tensor([float(v) for v in values], device=weight.device)

    def _single_active_adapter(self) -> str:
        active = [a for a in self.active_adapters if a in self.lora_A]
        if len(active) != 1:
            raise ILoRAError(f"expected exactly one active I-LoRA adapter, got {active}")
        return active[0]

    # -- forward -------------------------------------------------------------------------------------

    def _mixed_hidden(self, x: torch.Tensor, adapter: str) -> torch.Tensor:
        """(…, in) → (…, N·r): α/r · w_i(x) · h_j(x) at index i·r + j, where h = A·dropout(x), w = softmax(R·x)."""
        a_w = self.lora_A[adapter].weight
        route_w = self.lora_route[adapter].weight
        r, n = a_w.shape[0], route_w.shape[0]
        x = self._cast_input_dtype(x, a_w.dtype)
        dropout = self.lora_dropout[adapter]
        if isinstance(dropout, nn.Identity) or not self.training:
            # A and R read the same x: one (r+N)-row product instead of two passes over x.
            h, logits = F.linear(x, torch.cat([a_w, route_w])).split([r, n], dim=-1)
        else:
            h = F.linear(dropout(x), a_w)  # one dropout mask shared by all heads (Crab draws one per head)
            logits = F.linear(x, route_w)  # the router sees the undropped input, as in Crab
        weights = torch.softmax(logits, dim=-1, dtype=torch.float32)  # float32 softmax, as in Crab
        if self.record_router:
            self.router_weights = weights.detach()
            if self.router_history is not None:
                self.router_history.append(self.router_weights)
        weights = weights.to(h.dtype)
        if self.head_mask is not None:
            weights = weights * self.head_mask.to(weights.dtype)
        # Scale the r-wide hidden rather than the out-wide result: same value, r/out of the work.
        h = h * self.scaling[adapter]
        return (weights.unsqueeze(-1) * h.unsqueeze(-2)).flatten(-2)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        result = self.base_layer(x, *args, **kwargs)
        if self.disable_adapters:
            return result
        for adapter in self.active_adapters:
            if adapter not in self.lora_A:
                continue
            mixed = self._mixed_hidden(x, adapter)
            b_w = self.lora_B[adapter].weight
            if mixed.dtype == result.dtype == b_w.dtype:
                # y + G·Bᵀ in one BLAS call: no separate (…, out) temporary for the adapter term.
                flat = torch.addmm(
                    result.reshape(-1, self.out_features), mixed.reshape(-1, mixed.shape[-1]), b_w.t()
                )
                result = flat.view(result.shape)
            else:
                result = result + F.linear(mixed.to(b_w.dtype), b_w).to(result.dtype)
        return result

    def merge(self, safe_merge: bool = False, adapter_names: list[str] | None = None) -> None:
        raise ILoRAError("I-LoRA cannot be merged into W: the router makes the update depend on each input token")

    def unmerge(self) -> None:
        return None  # never merged

    def __repr__(self) -> str:
        return "ilora." + super().__repr__()


# ----------------------------------------------------------------------------------- model-level API


def apply_ilora(model: nn.Module, config: ILoRAConfig) -> PeftModel:
    """Wrap `config.target_modules` of `model` with I-LoRA through peft; returns the `PeftModel` to use.

    Like every peft wrapper this modifies `model` in place (its linears are replaced) and freezes
    all non-adapter parameters. Only `lora_A`, `lora_B` and `lora_route` stay trainable.
    """
    # Checked before wrapping: get_peft_model changes `model` even when it then fails.
    names = config.target_modules
    if not any(isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1] in names for n, m in model.named_modules()):
        raise ILoRAError(f"no nn.Linear named {list(config.target_modules)} found in {type(model).__name__}")
    with warnings.catch_warnings():
        # peft's PeftModel.__init__ reads `is_gradient_checkpointing`, which transformers 5 deprecates with a
        # FutureWarning on every wrap; the wording is theirs to fix, nothing for us to act on.
        warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        return get_peft_model(model, config.to_peft())


def load_ilora_pretrained(model: nn.Module, directory: str | Path, is_trainable: bool = False) -> PeftModel:
    """Load an adapter written by `PeftModel.save_pretrained` of an I-LoRA model onto `model` (modified in place)."""
    directory = Path(directory)
    if not (directory / "adapter_config.json").is_file():
        raise ILoRAError(f"{directory}: no adapter_config.json (not a saved peft adapter)")
    config = ILoRAPeftConfig.from_pretrained(str(directory))
    return PeftModel.from_pretrained(model, str(directory), config=config, is_trainable=is_trainable)


def ilora_layers(model: nn.Module) -> list[ILoRALinear]:
    """Every I-LoRA layer of `model`, in module order."""
    return [m for m in model.modules() if isinstance(m, ILoRALinear)]


def _named_layers(model: nn.Module) -> list[tuple[str, ILoRALinear]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, ILoRALinear)]


def set_active_heads(model: nn.Module, mask: Sequence[bool] | None) -> None:
    """Switch I-LoRA heads on/off in every layer (`None`: all on); see `ILoRALinear.set_head_mask`."""
    layers = ilora_layers(model)
    if not layers:
        raise ILoRAError(f"{type(model).__name__} has no I-LoRA layers")
    for layer in layers:
        layer.set_head_mask(mask)


class RouterWeights(Mapping[str, torch.Tensor]):
    """Live read-only view {layer name: last forward's router softmax (…, N), float32, detached}."""

    def __init__(self, layers: list[tuple[str, ILoRALinear]]) -> None:
        self._layers = dict(layers)

    def __getitem__(self, name: str) -> torch.Tensor:
        weights = self._layers[name].router_weights
        if weights is None:
            raise KeyError(f"layer {name!r} has not run a forward pass since recording started")
        return weights

    def __iter__(self) -> Iterator[str]:
        return (n for n, layer in self._layers.items() if layer.router_weights is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@contextlib.contextmanager
def record_router_weights(model: nn.Module) -> Iterator[RouterWeights]:
    """Within the block every I-LoRA layer keeps its last forward's router weights (off by default: memory).

    >>> with record_router_weights(model) as rw:
    ...     model(input_ids)
    ...     rw["base_model.model.model.layers.0.self_attn.q_proj"].mean(dim=(0, 1))  # mean weight per head
    """
    layers = _named_layers(model)
    if not layers:
        raise ILoRAError(f"{type(model).__name__} has no I-LoRA layers")
    for _, layer in layers:
        layer.record_router, layer.router_weights = True, None
    try:
        yield RouterWeights(layers)
    finally:
        for _, layer in layers:
            layer.record_router, layer.router_weights = False, None


class RouterHistory(Mapping[str, torch.Tensor]):
    """Live read-only view {layer name: the router softmax of every forward since recording started (or
    since `clear`), joined along the token axis: (B, T_1 + T_2 + …, N), float32, detached}.

    Why joined: in KV-cached generation the first forward covers the (left-padded) prompt and each later
    forward the one token fed back, so the join lines up with the positions of the whole sequence,
    prompt then generated tokens, and a caller selects the positions it wants with one (B, T) mask.
    """

    def __init__(self, layers: list[tuple[str, ILoRALinear]]) -> None:
        self._layers = dict(layers)

    def __getitem__(self, name: str) -> torch.Tensor:
        history = self._layers[name].router_history
        if not history:
            raise KeyError(f"layer {name!r} has not run a forward pass since recording started")
        if len({tuple(w.shape[:-2]) for w in history}) != 1:
            raise ILoRAError(f"layer {name!r}: the recorded forwards have different batch shapes "
                             f"{sorted({tuple(w.shape[:-2]) for w in history})}; clear() the history between batches")
        return torch.cat(history, dim=-2)

    def __iter__(self) -> Iterator[str]:
        return (n for n, layer in self._layers.items() if layer.router_history)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def clear(self) -> None:
        """Forget what was recorded so far (e.g. between batches), and keep recording."""
        for layer in self._layers.values():
            if layer.router_history is not None:
                layer.router_history.clear()


@contextlib.contextmanager
def record_router_history(model: nn.Module) -> Iterator[RouterHistory]:
    """Within the block every I-LoRA layer keeps the router weights of every forward, not just the last
    (`record_router_weights`): what a generation loop needs, where each decoding step is a forward.

    >>> with record_router_history(model.llm) as history:
    ...     generation = model.generate(prepared, 8)
    ...     history[name]  # (B, prompt length + steps - 1, N): every position of the generated sequence
    """
    layers = _named_layers(model)
    if not layers:
        raise ILoRAError(f"{type(model).__name__} has no I-LoRA layers")
    for _, layer in layers:
        layer.record_router, layer.router_weights, layer.router_history = True, None, []
    try:
        yield RouterHistory(layers)
    finally:
        for _, layer in layers:
            layer.record_router, layer.router_weights, layer.router_history = False, None, None


# ------------------------------------------------------------------------------------- state dicts

_PARAM_NAMES = ("lora_A", "lora_B", "lora_route")


def ilora_state_dict(model: nn.Module, adapter_name: str | None = None) -> dict[str, torch.Tensor]:
    """Adapter weights only, keyed `{module path}.{lora_A|lora_B|lora_route}.weight` — the keys peft's
    `save_pretrained` writes (adapter name dropped). Values are detached views of the live parameters."""
    out: dict[str, torch.Tensor] = {}
    for name, layer in _named_layers(model):
        adapter = adapter_name or layer._single_active_adapter()
        for param in _PARAM_NAMES:
            out[f"{name}.{param}.weight"] = getattr(layer, param)[adapter].weight.detach()
    return out


def load_ilora_state_dict(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    strict: bool = True,
    adapter_name: str | None = None,
) -> tuple[list[str], list[str]]:
    """Copy adapter weights from `state_dict` (keys as `ilora_state_dict`) into `model`.

    strict: any missing or unexpected key raises `ILoRAError` listing them all. Returns
    (missing, unexpected). A shape mismatch always raises.
    """
    targets = {}
    for name, layer in _named_layers(model):
        adapter = adapter_name or layer._single_active_adapter()
        for param in _PARAM_NAMES:
            targets[f"{name}.{param}.weight"] = getattr(layer, param)[adapter].weight
    missing = sorted(set(targets) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(targets))
    if strict and (missing or unexpected):
        raise ILoRAError(
            f"I-LoRA state dict does not match the model: {len(missing)} missing key(s) {missing}, "
            f"{len(unexpected)} unexpected key(s) {unexpected}"
        )
    with torch.no_grad():
        for key in sorted(set(targets) & set(state_dict)):
            src, dst = state_dict[key], targets[key]
            if tuple(src.shape) != tuple(dst.shape):
                raise ILoRAError(f"I-LoRA weight {key}: checkpoint shape {tuple(src.shape)}, model {tuple(dst.shape)}")
            dst.copy_(src)
    return missing, unexpected


# ------------------------------------------------------------------------- official (Crab) key layout
# GeWu-Lab/Crab peft_hyper/tuners/lora.py: per wrapped linear `lora_A` = nn.Linear(in, r),
# `lora_B{i}` = nn.Linear(r, out) for i < lora_nums, `lora_route` = nn.Linear(in, lora_nums), all
# bias-free; the layer subclasses nn.Linear, so they sit directly under the linear's path. The
# release (`finetune_weights.bin`, written by scripts/pretrain/trainer.py `_save_checkpoint`) keeps
# the named_parameters of the peft-wrapped model, hence the `base_model.model.` prefix, e.g.
# base_model.model.model.layers.0.self_attn.q_proj.lora_B2.weight. Prefixes are left untouched here.

_OFFICIAL_B = re.compile(r"^(?P<module>.+)\.lora_B(?P<head>\d+)\.weight$")


def official_ilora_key_map(our_keys: Iterable[str], n_heads: int) -> dict[str, tuple[str, ...]]:
    """Our key → the official key(s) holding the same numbers (prefix kept).

    `…lora_A.weight` and `…lora_route.weight` map one-to-one; `…lora_B.weight` (out, N·r) maps to
    (`…lora_B0.weight`, …, `…lora_B{N-1}.weight`), each (out, r): head i is columns i·r … (i+1)·r−1.
    """
    mapping: dict[str, tuple[str, ...]] = {}
    for key in our_keys:
        if key.endswith(".lora_B.weight"):
            module = key[: -len(".lora_B.weight")]
            mapping[key] = tuple(f"{module}.lora_B{i}.weight" for i in range(n_heads))
        elif key.endswith((".lora_A.weight", ".lora_route.weight")):
            mapping[key] = (key,)
        else:
            raise ILoRAError(f"not an I-LoRA key: {key!r}")
    return mapping


def ilora_to_official(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our I-LoRA keys → the official per-head layout; the head count comes from each module's router.
    Non-I-LoRA entries pass through unchanged."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if not key.endswith(".lora_B.weight"):
            out[key] = value
            continue
        module = key[: -len(".lora_B.weight")]
        route = state_dict.get(f"{module}.lora_route.weight")
        if route is None:
            raise ILoRAError(f"{key}: no {module}.lora_route.weight to tell the number of heads")
        n_heads = route.shape[0]
        if value.shape[1] % n_heads:
            raise ILoRAError(f"{key}: width {value.shape[1]} is not a multiple of {n_heads} heads")
        for head, block in enumerate(value.chunk(n_heads, dim=1)):
            out[f"{module}.lora_B{head}.weight"] = block.contiguous()
    return out


def ilora_from_official(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official keys (`…lora_B{i}.weight` per head) → ours (one `…lora_B.weight`, heads side by side).
    Heads must be numbered 0…N−1 without gaps and N must equal the router's rows. Other entries
    (`lora_A`, `lora_route`, non-LoRA weights) pass through unchanged."""
    out: dict[str, torch.Tensor] = {}
    heads: dict[str, dict[int, torch.Tensor]] = {}
    for key, value in state_dict.items():
        match = _OFFICIAL_B.match(key)
        if match:
            heads.setdefault(match["module"], {})[int(match["head"])] = value
        else:
            out[key] = value
    for module, blocks in heads.items():
        n_heads = len(blocks)
        if sorted(blocks) != list(range(n_heads)):
            raise ILoRAError(f"{module}: official heads lora_B{sorted(blocks)} are not numbered 0..{n_heads - 1}")
        route = state_dict.get(f"{module}.lora_route.weight")
        if route is not None and route.shape[0] != n_heads:
            raise ILoRAError(f"{module}: {n_heads} lora_B heads but lora_route has {route.shape[0]} rows")
        out[f"{module}.lora_B.weight"] = torch.cat([blocks[i] for i in range(n_heads)], dim=1)
    return out
