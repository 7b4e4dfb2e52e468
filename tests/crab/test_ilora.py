"""I-LoRA: the fused layer against the per-head formulation of the public Crab code, peft round trips,
head mask, router recording and the official (GeWu-Lab/Crab) key layout."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from peft import PeftModel
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from avbench.adapters.crab.ilora import (
    ILoRAConfig,
    ILoRAError,
    ILoRALinear,
    ILoRAPeftConfig,
    apply_ilora,
    ilora_from_official,
    ilora_layers,
    ilora_state_dict,
    ilora_to_official,
    load_ilora_pretrained,
    load_ilora_state_dict,
    official_ilora_key_map,
    record_router_weights,
    set_active_heads,
)

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def naive_ilora_forward(
    layer: ILoRALinear, x: torch.Tensor, heads: list[int] | None = None, adapter: str = "default"
) -> torch.Tensor:
    """The public Crab formulation (peft_hyper/tuners/lora.py `Linear.forward`): for every head, recompute
    A(dropout(x)), apply B_i, weight by the float32 softmax of the router on the undropped x, scale by α/r.
    `heads` restricts the sum (no renormalisation) for the head-mask check."""
    a_w = layer.lora_A[adapter].weight
    b_w = layer.lora_B[adapter].weight
    route_w = layer.lora_route[adapter].weight
    r, n = a_w.shape[0], route_w.shape[0]
    result = layer.base_layer(x)
    weights = torch.softmax(F.linear(x, route_w), dim=-1, dtype=torch.float32).to(result.dtype)
    for i in range(n) if heads is None else heads:
        b_i = b_w[:, i * r : (i + 1) * r]
        hidden = F.linear(layer.lora_dropout[adapter](x), a_w)
        result = result + weights[..., i : i + 1] * F.linear(hidden, b_i) * layer.scaling[adapter]
    return result


def make_layer(in_f: int, out_f: int, r: int, n_heads: int, dropout: float = 0.0, seed: int = 0) -> ILoRALinear:
    torch.manual_seed(seed)
    layer = ILoRALinear(nn.Linear(in_f, out_f), r=r, lora_alpha=2 * r, lora_dropout=dropout, n_heads=n_heads)
    with torch.no_grad():  # non-zero heads, distinct per head, so a head mix-up cannot cancel out
        layer.lora_B["default"].weight.normal_()
    return layer


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=100,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


def randomise_heads(model: nn.Module, seed: int = 1) -> None:
    torch.manual_seed(seed)
    with torch.no_grad():
        for layer in ilora_layers(model):
            layer.lora_B["default"].weight.normal_(std=0.5)


IDS = torch.tensor([[5, 17, 3, 99, 42, 0, 8], [1, 2, 3, 4, 5, 6, 7]])

SHAPES = [  # (batch, seq, in, out, r)
    (2, 7, 16, 24, 4),
    (1, 1, 8, 8, 1),
    (3, 5, 32, 12, 8),
    (2, 9, 40, 64, 2),
]


# ------------------------------------------------------------------------------------- equivalence


@pytest.mark.parametrize("n_heads", [1, 2, 3, 5])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("training", [False, True])
def test_fused_equals_naive(shape: tuple[int, ...], n_heads: int, training: bool) -> None:
    batch, seq, in_f, out_f, r = shape
    layer = make_layer(in_f, out_f, r, n_heads).train(training)
    x = torch.randn(batch, seq, in_f)
    torch.testing.assert_close(layer(x), naive_ilora_forward(layer, x), rtol=1e-5, atol=1e-5)
    # Leading dims are free: a flat token matrix gives the same rows.
    flat = naive_ilora_forward(layer, x).reshape(-1, out_f)
    torch.testing.assert_close(layer(x.reshape(-1, in_f)), flat, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_heads", [1, 3, 5])
def test_gradients_equal_naive(n_heads: int) -> None:
    layer = make_layer(24, 20, 4, n_heads).train()
    x = torch.randn(2, 6, 24)
    upstream = torch.randn(2, 6, 20)
    params = [layer.lora_A["default"].weight, layer.lora_B["default"].weight, layer.lora_route["default"].weight]

    def grads(fn) -> list[torch.Tensor]:
        xi = x.clone().requires_grad_(True)
        (fn(xi) * upstream).sum().backward()
        out = [p.grad.clone() for p in params] + [xi.grad.clone()]
        for p in params:
            p.grad = None
        return out

    fused = grads(layer)
    naive = grads(lambda xi: naive_ilora_forward(layer, xi))
    for name, g_f, g_n in zip(["A", "B", "router", "input"], fused, naive):
        if name == "router" and n_heads == 1:
            assert torch.all(g_f == 0)  # softmax over one head is constant 1: the router cannot learn
        else:
            assert g_f.abs().sum() > 0, name  # every part really gets a gradient
        torch.testing.assert_close(g_f, g_n, rtol=1e-5, atol=1e-5, msg=lambda m: f"grad {name}: {m}")
    assert layer.base_layer.weight.grad is None  # frozen base: no gradient accumulated


class FixedMask(nn.Module):
    """A deterministic stand-in for dropout, so the training path (dropout active) can be compared."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.mask = mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


def test_dropout_feeds_A_only_router_sees_clean_input() -> None:
    layer = make_layer(16, 12, 4, 3, dropout=0.5).train()
    x = torch.randn(2, 5, 16)
    layer.lora_dropout["default"] = FixedMask((torch.rand(2, 5, 16) > 0.5).float() * 2.0)
    torch.testing.assert_close(layer(x), naive_ilora_forward(layer, x), rtol=1e-5, atol=1e-5)
    # Real dropout is active in training and off in eval.
    layer.lora_dropout["default"] = nn.Dropout(0.5)
    torch.manual_seed(0)
    assert not torch.allclose(layer(x), layer(x))
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))


def test_zero_init_heads_give_base_output() -> None:
    torch.manual_seed(0)
    base = nn.Linear(16, 12)
    x = torch.randn(3, 4, 16)
    expected = base(x)
    layer = ILoRALinear(base, r=4, lora_alpha=8, lora_dropout=0.05, n_heads=3)
    assert torch.all(layer.lora_B["default"].weight == 0)
    assert layer.lora_A["default"].weight.abs().sum() > 0 and layer.lora_route["default"].weight.abs().sum() > 0
    assert torch.equal(layer.eval()(x), expected)


def test_bf16_base_with_fp32_adapter() -> None:
    layer = make_layer(32, 16, 4, 3)
    x = torch.randn(2, 3, 32)
    expected = naive_ilora_forward(layer, x)
    layer.base_layer.to(torch.bfloat16)
    out = layer(x.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected, rtol=2e-2, atol=5e-2)


def test_layer_rejects_non_linear_and_bad_sizes() -> None:
    with pytest.raises(ILoRAError, match="nn.Linear"):
        ILoRALinear(nn.Conv1d(4, 4, 1))
    with pytest.raises(ILoRAError, match="n_heads"):
        ILoRALinear(nn.Linear(4, 4), n_heads=0)
    with pytest.raises(ILoRAError, match="rank"):
        ILoRAConfig(r=0)
    with pytest.raises(ILoRAError, match="dropout"):
        ILoRAConfig(dropout=1.0)
    with pytest.raises(ILoRAError, match="use_dora"):
        ILoRAPeftConfig(target_modules=["q_proj"], use_dora=True)
    with pytest.raises(ILoRAError, match="merged"):
        make_layer(4, 4, 2, 2).merge()


# ----------------------------------------------------------------------------------------- head mask


def test_head_mask_zero_ablates_without_renormalising() -> None:
    layer = make_layer(16, 12, 4, 3).eval()
    x = torch.randn(2, 5, 16)
    full = layer(x)
    layer.set_head_mask([True, False, True])
    masked = layer(x)
    torch.testing.assert_close(masked, naive_ilora_forward(layer, x, heads=[0, 2]), rtol=1e-5, atol=1e-5)
    # The difference is exactly head 1's own term w_1 · B_1 A x · α/r.
    a_w, b_w = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    w1 = torch.softmax(F.linear(x, layer.lora_route["default"].weight), dim=-1)[..., 1:2]
    head1 = w1 * F.linear(F.linear(x, a_w), b_w[:, 4:8]) * layer.scaling["default"]
    torch.testing.assert_close(full - masked, head1, rtol=1e-5, atol=1e-5)
    layer.set_head_mask([False, False, False])
    torch.testing.assert_close(layer(x), layer.base_layer(x), rtol=0, atol=0)
    layer.set_head_mask(None)
    torch.testing.assert_close(layer(x), full, rtol=0, atol=0)
    with pytest.raises(ILoRAError, match="3 booleans"):
        layer.set_head_mask([True, False])
    with pytest.raises(ILoRAError, match="3 booleans"):
        layer.set_head_mask([True, 2, False])


def test_set_active_heads_on_model() -> None:
    model = apply_ilora(tiny_llama(), ILoRAConfig(r=4, alpha=8, dropout=0.0, n_heads=3, target_modules=TARGETS))
    randomise_heads(model)
    full = model(IDS).logits
    set_active_heads(model, [False, False, False])
    with model.disable_adapter():
        base = model(IDS).logits
    torch.testing.assert_close(model(IDS).logits, base, rtol=0, atol=0)
    set_active_heads(model, [True, True, False])
    partial = model(IDS).logits
    assert not torch.allclose(partial, full) and not torch.allclose(partial, base)
    set_active_heads(model, None)
    torch.testing.assert_close(model(IDS).logits, full, rtol=0, atol=0)
    with pytest.raises(ILoRAError, match="no I-LoRA layers"):
        set_active_heads(tiny_llama(), None)


# ------------------------------------------------------------------------------------ router weights


def test_router_weights_recorded_only_inside_context() -> None:
    model = apply_ilora(tiny_llama(), ILoRAConfig(r=4, alpha=8, dropout=0.0, n_heads=3, target_modules=TARGETS))
    model(IDS)
    assert all(layer.router_weights is None for layer in ilora_layers(model))  # off by default
    q_name = "base_model.model.model.layers.1.self_attn.q_proj"
    q_layer = model.get_submodule(q_name)
    captured: dict[str, torch.Tensor] = {}
    q_layer.register_forward_pre_hook(lambda mod, args: captured.setdefault("x", args[0].detach()))
    set_active_heads(model, [True, False, True])  # recording shows the router's own softmax, mask or not
    with record_router_weights(model) as rw:
        assert len(rw) == 0
        model(IDS)
        assert len(rw) == 2 * 7
        weights = rw[q_name]
        assert weights.shape == (2, 7, 3) and weights.dtype == torch.float32 and not weights.requires_grad
        expected = torch.softmax(F.linear(captured["x"], q_layer.lora_route["default"].weight), dim=-1)
        torch.testing.assert_close(weights, expected, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 7))
    assert all(layer.router_weights is None and not layer.record_router for layer in ilora_layers(model))


# --------------------------------------------------------------------------------------------- peft


def test_apply_ilora_wraps_targets_and_freezes_base() -> None:
    base = tiny_llama()
    expected = base(IDS).logits.detach()
    model = apply_ilora(base, ILoRAConfig(target_modules=TARGETS))
    layers = dict((n, m) for n, m in model.named_modules() if isinstance(m, ILoRALinear))
    assert len(layers) == 2 * 7
    assert "base_model.model.model.layers.0.mlp.down_proj" in layers
    for layer in layers.values():
        assert (layer.r["default"], layer.n_heads["default"], layer.scaling["default"]) == (8, 3, 2.0)
        assert layer.lora_dropout["default"].p == 0.05
        assert layer.lora_B["default"].weight.shape == (layer.out_features, 3 * 8)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{n}.{p}.default.weight" for n in layers for p in ("lora_A", "lora_B", "lora_route")}
    assert isinstance(model.get_submodule("base_model.model.lm_head"), nn.Linear)  # untargeted
    torch.testing.assert_close(model.eval()(IDS).logits, expected, rtol=0, atol=0)  # B = 0 at init
    with pytest.raises(ILoRAError, match="no nn.Linear"):
        apply_ilora(tiny_llama(), ILoRAConfig(target_modules=("wq",)))


def test_peft_save_and_load_round_trip(tmp_path) -> None:
    model = apply_ilora(tiny_llama(seed=0), ILoRAConfig(r=4, alpha=8, n_heads=3, target_modules=TARGETS)).eval()
    randomise_heads(model)
    expected = model(IDS).logits.detach()
    model.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "adapter_model.safetensors")
    assert set(saved) == set(ilora_state_dict(model))  # adapter weights only, no base weights
    assert len(saved) == 2 * 7 * 3
    assert json.loads((tmp_path / "adapter_config.json").read_text())["n_heads"] == 3
    # Same base weights (same seed), adapter loaded from disk: identical logits.
    loaded = load_ilora_pretrained(tiny_llama(seed=0), tmp_path)
    torch.testing.assert_close(loaded(IDS).logits, expected, rtol=0, atol=0)
    assert not any(p.requires_grad for p in loaded.parameters())  # inference load
    # A plain peft load would build ordinary LoRA layers: it fails loudly on the fused B, never silently.
    with pytest.warns(UserWarning, match="n_heads"), pytest.raises(RuntimeError, match="size mismatch"):
        PeftModel.from_pretrained(tiny_llama(seed=0), tmp_path)
    with pytest.raises(ILoRAError, match="adapter_config.json"):
        load_ilora_pretrained(tiny_llama(), tmp_path / "absent")


def test_standalone_state_dict_round_trip(tmp_path) -> None:
    config = ILoRAConfig(r=4, alpha=8, n_heads=2, target_modules=("q_proj", "v_proj"))
    model = apply_ilora(tiny_llama(seed=0), config).eval()
    randomise_heads(model)
    expected = model(IDS).logits.detach()
    save_file({k: v.contiguous() for k, v in ilora_state_dict(model).items()}, tmp_path / "ilora.safetensors")
    fresh = apply_ilora(tiny_llama(seed=0), config).eval()
    assert not torch.allclose(fresh(IDS).logits, expected)
    assert load_ilora_state_dict(fresh, load_file(tmp_path / "ilora.safetensors")) == ([], [])
    torch.testing.assert_close(fresh(IDS).logits, expected, rtol=0, atol=0)


def test_state_dict_mismatch_lists_keys() -> None:
    model = apply_ilora(tiny_llama(), ILoRAConfig(r=4, n_heads=2, target_modules=("q_proj",)))
    state = dict(ilora_state_dict(model))
    gone = "base_model.model.model.layers.1.self_attn.q_proj.lora_route.weight"
    del state[gone]
    state["base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight"] = torch.zeros(4, 64)
    with pytest.raises(ILoRAError) as err:
        load_ilora_state_dict(model, state)
    assert gone in str(err.value) and "k_proj.lora_A.weight" in str(err.value)
    assert "1 missing" in str(err.value) and "1 unexpected" in str(err.value)
    missing, unexpected = load_ilora_state_dict(model, state, strict=False)
    assert missing == [gone] and unexpected == ["base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight"]
    bad = dict(ilora_state_dict(model))
    bad["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"] = torch.zeros(64, 12)
    with pytest.raises(ILoRAError, match=r"lora_B.weight: checkpoint shape \(64, 12\), model \(64, 8\)"):
        load_ilora_state_dict(model, bad)


# ---------------------------------------------------------------------------------- official layout


def test_official_key_map() -> None:
    keys = ["m.q_proj.lora_A.weight", "m.q_proj.lora_B.weight", "m.q_proj.lora_route.weight"]
    assert official_ilora_key_map(keys, n_heads=3) == {
        "m.q_proj.lora_A.weight": ("m.q_proj.lora_A.weight",),
        "m.q_proj.lora_B.weight": ("m.q_proj.lora_B0.weight", "m.q_proj.lora_B1.weight", "m.q_proj.lora_B2.weight"),
        "m.q_proj.lora_route.weight": ("m.q_proj.lora_route.weight",),
    }
    with pytest.raises(ILoRAError, match="not an I-LoRA key"):
        official_ilora_key_map(["m.q_proj.weight"], n_heads=3)


def test_official_checkpoint_loads_into_fused_layout() -> None:
    """Build a release in the official layout by hand (per-head B_i), load it, and compare with the
    official formula evaluated directly on those per-head tensors."""
    config = ILoRAConfig(r=4, alpha=8, n_heads=3, target_modules=("q_proj", "down_proj"))
    model = apply_ilora(tiny_llama(seed=0), config)
    model.eval()
    torch.manual_seed(3)
    official: dict[str, torch.Tensor] = {"base_model.model.mm_projector.weight": torch.zeros(2)}  # passes through
    for name, layer in ((n, m) for n, m in model.named_modules() if isinstance(m, ILoRALinear)):
        official[f"{name}.lora_A.weight"] = torch.randn(4, layer.in_features) * 0.1
        official[f"{name}.lora_route.weight"] = torch.randn(3, layer.in_features)
        for i in range(3):
            official[f"{name}.lora_B{i}.weight"] = torch.randn(layer.out_features, 4) * 0.1
    ours = ilora_from_official(official)
    assert ours.pop("base_model.model.mm_projector.weight").shape == (2,)
    load_ilora_state_dict(model, ours)
    assert set(ilora_to_official(ilora_state_dict(model))) == set(official) - {"base_model.model.mm_projector.weight"}
    for key, value in ilora_to_official(ilora_state_dict(model)).items():
        assert torch.equal(value, official[key]), key

    name = "base_model.model.model.layers.0.mlp.down_proj"
    layer = model.get_submodule(name)
    x = torch.randn(2, 5, layer.in_features)
    expected = layer.base_layer(x)
    route = torch.softmax(F.linear(x, official[f"{name}.lora_route.weight"]), dim=-1)
    for i in range(3):
        delta = F.linear(F.linear(x, official[f"{name}.lora_A.weight"]), official[f"{name}.lora_B{i}.weight"])
        expected = expected + route[..., i : i + 1] * delta * (8 / 4)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_official_conversion_errors() -> None:
    gap = {"m.lora_B0.weight": torch.zeros(3, 2), "m.lora_B2.weight": torch.zeros(3, 2)}
    with pytest.raises(ILoRAError, match="not numbered"):
        ilora_from_official(gap)
    wrong = {"m.lora_B0.weight": torch.zeros(3, 2), "m.lora_route.weight": torch.zeros(2, 5)}
    with pytest.raises(ILoRAError, match="lora_route has 2 rows"):
        ilora_from_official(wrong)
    with pytest.raises(ILoRAError, match="number of heads"):
        ilora_to_official({"m.lora_B.weight": torch.zeros(3, 6)})
