"""BEATs: official key layout, checkpoint round trip, attention against its definition, padding, Crab segments."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from avbench.adapters.crab.beats import (
    BEATs,
    BEATsConfig,
    CRAB_SEGMENTS,
    FBANK_MEAN,
    FBANK_STD,
    SegmentSpec,
    WeightNormConv1d,
    beats_fbank,
    crab_segments,
    load_beats_checkpoint,
    pool_padding_mask,
    relative_position_bucket,
    save_beats_checkpoint,
)
from avbench.adapters.crab.fbank import kaldi_fbank
from avbench.errors import DataError


def _model(seed: int = 0, **overrides) -> BEATs:
    torch.manual_seed(seed)
    model = BEATs(BEATsConfig.tiny(**overrides)).eval()
    # Untrained init leaves some parameters at 1 or 0 (layer norms, grep_a, biases); randomise them all
    # so a wrongly mapped key changes the output.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def _audio(batch: int, seconds: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.3 * torch.randn(batch, int(seconds * 16000), generator=g)


# ----------------------------------------------------------------------------------------------- layout


def _official_keys(layers: int, finetuned: bool) -> set[str]:
    """The official BEATs state-dict names (BEATs.py / backbone.py), written out by hand."""
    keys = {"patch_embedding.weight", "layer_norm.weight", "layer_norm.bias", "post_extract_proj.weight",
            "post_extract_proj.bias", "encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v",
            "encoder.pos_conv.0.bias", "encoder.layer_norm.weight", "encoder.layer_norm.bias"}
    for i in range(layers):
        p = f"encoder.layers.{i}."
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj", "grep_linear"):
            keys |= {p + f"self_attn.{proj}.weight", p + f"self_attn.{proj}.bias"}
        keys |= {p + "self_attn.grep_a", p + "self_attn.relative_attention_bias.weight"}
        for mod in ("self_attn_layer_norm", "fc1", "fc2", "final_layer_norm"):
            keys |= {p + f"{mod}.weight", p + f"{mod}.bias"}
    if finetuned:
        keys |= {"predictor.weight", "predictor.bias"}
    return keys


def test_full_size_model_has_the_official_keys_shapes_and_size():
    cfg = BEATsConfig(relative_position_embedding=True, gru_rel_pos=True, deep_norm=True, max_distance=800,
                      finetuned_model=True, layer_wise_gradient_decay_ratio=0.6)
    with torch.device("meta"):
        model = BEATs(cfg)
    state = model.state_dict()
    assert set(state) == _official_keys(12, finetuned=True)
    assert len(state) == 252
    assert state["patch_embedding.weight"].shape == (512, 1, 16, 16)
    assert state["encoder.pos_conv.0.weight_g"].shape == (1, 1, 128)
    assert state["encoder.pos_conv.0.weight_v"].shape == (768, 48, 128)  # 768 / 16 groups
    assert state["encoder.layers.5.self_attn.relative_attention_bias.weight"].shape == (320, 12)
    assert state["encoder.layers.5.self_attn.grep_linear.weight"].shape == (8, 64)
    assert state["encoder.layers.5.self_attn.grep_a"].shape == (1, 12, 1, 1)
    assert state["predictor.weight"].shape == (527, 768)
    # parameters() deduplicates the shared relative-position table: 90.7 M, BEATs' published ~90 M
    assert sum(p.numel() for p in model.parameters()) == 90_717_055


def test_relative_position_table_is_shared_by_all_layers():
    model = _model()
    tables = [layer.self_attn.relative_attention_bias for layer in model.encoder.layers]
    assert all(t is tables[0] for t in tables)


def test_config_round_trips_and_keeps_unknown_keys():
    official_like = {"encoder_layers": 2, "encoder_embed_dim": 32, "encoder_ffn_embed_dim": 64,
                     "encoder_attention_heads": 2, "embed_dim": 24, "input_patch_size": 16, "conv_pos": 16,
                     "conv_pos_groups": 4, "relative_position_embedding": True, "num_buckets": 32,
                     "max_distance": 64, "gru_rel_pos": True, "deep_norm": True, "dropout": 0.0,
                     "some_future_field": [1, 2]}
    cfg = BEATsConfig.from_dict(official_like)
    assert cfg.encoder_layers == 2 and cfg.deep_norm is True and cfg.dropout == 0.0
    assert cfg.extra == {"some_future_field": [1, 2]}
    assert BEATsConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["some_future_field"] == [1, 2]


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"encoder_layers": "12"}, "encoder_layers"),
        ({"deep_norm": "yes"}, "deep_norm"),
        ({"activation_fn": "glu"}, "activation_fn"),
        ({"deep_norm": True, "layer_norm_first": True}, "exclude"),
        ({"encoder_attention_heads": 5}, "divisible"),
        ({"input_patch_size": 12}, "input_patch_size"),
    ],
)
def test_bad_config_is_a_clear_error(cfg, message):
    with pytest.raises(ValueError, match=message):
        BEATsConfig.from_dict(cfg)


# ------------------------------------------------------------------------------------------ components


def test_weight_norm_conv_equals_torch_weight_norm():
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(8, 8, kernel_size=4, padding=2, groups=2)
    conv = torch.nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
    with torch.no_grad():
        conv.parametrizations.weight.original0.mul_(torch.rand(1, 1, 4) + 0.5)  # g away from ||v||
    ours = WeightNormConv1d(8, 4, groups=2)
    with torch.no_grad():
        ours.weight_g.copy_(conv.parametrizations.weight.original0)
        ours.weight_v.copy_(conv.parametrizations.weight.original1)
        ours.bias.copy_(conv.bias)
    x = torch.randn(3, 8, 10)
    torch.testing.assert_close(ours(x), conv(x), rtol=1e-6, atol=1e-6)
    assert ours(x).shape == (3, 8, 11)  # even kernel: one extra step, which the encoder's SamePad drops


def test_relative_position_buckets_by_hand():
    # 320 buckets, max distance 800: 160 per direction; distances < 80 exact; beyond, 80 + floor(80 *
    # ln(d / 80) / ln(10)), capped at 159; keys after the query (+) are offset by 160.
    rel = torch.tensor([0, -5, 5, -79, -80, -100, 100, -799, -800, 5000])
    expected = [0, 5, 165, 79, 80, 87, 247, 159, 159, 319]  # -100: 80 + floor(7.75); -799: 80 + floor(79.96)
    assert relative_position_bucket(rel, 320, 800).tolist() == expected


def _reference_attention(attn, x, pad, bias):
    """Per batch, head, query: softmax(q k / sqrt(d) + gate * bias) v, the gate from the raw query."""
    b, t, c = x.shape
    h, d = attn.num_heads, attn.head_dim
    q, k, v = attn.q_proj(x), attn.k_proj(x), attn.v_proj(x)
    out = torch.zeros(b, t, c)
    for bi in range(b):
        for hi in range(h):
            cols = slice(hi * d, (hi + 1) * d)
            for i in range(t):
                qi = q[bi, i, cols]
                g = attn.grep_linear(qi)  # 8 values: two sums of four
                ga, gb = torch.sigmoid(g[:4].sum()), torch.sigmoid(g[4:].sum())
                gate = ga * (gb * attn.grep_a[0, hi, 0, 0] - 1.0) + 2.0
                scores = torch.stack([qi @ k[bi, j, cols] / math.sqrt(d) + gate * bias[hi, i, j] for j in range(t)])
                scores = scores.masked_fill(pad[bi], float("-inf"))
                out[bi, i, cols] = torch.softmax(scores, dim=0) @ v[bi, :, cols]
    return attn.out_proj(out)


def test_attention_matches_its_definition_with_gated_bias_and_padding():
    model = _model()
    attn = model.encoder.layers[1].self_attn
    x = torch.randn(2, 7, 32)
    pad = torch.tensor([[False] * 7, [False] * 5 + [True] * 2])
    bias = attn.compute_bias(7)
    # bias[h, i, j] = table[bucket(j - i), h]
    table = attn.relative_attention_bias.weight
    assert torch.equal(bias[1, 2, 6], table[relative_position_bucket(torch.tensor(4), 32, 64), 1])
    with torch.no_grad():
        torch.testing.assert_close(attn(x, pad, bias), _reference_attention(attn, x, pad, bias), rtol=1e-5, atol=1e-5)


def test_deep_norm_layer_matches_its_definition():
    model = _model()
    layer = model.encoder.layers[0]
    x = torch.randn(2, 6, 32)
    bias = layer.self_attn.compute_bias(6)
    alpha = (2 * 2) ** 0.25  # DeepNorm: (2 * layers)^(1/4)
    with torch.no_grad():
        h = F.layer_norm(x * alpha + layer.self_attn(x, None, bias), (32,), layer.self_attn_layer_norm.weight,
                         layer.self_attn_layer_norm.bias)
        ffn = layer.fc2(F.gelu(layer.fc1(h)))
        expected = F.layer_norm(h * alpha + ffn, (32,), layer.final_layer_norm.weight, layer.final_layer_norm.bias)
        torch.testing.assert_close(layer(x, None, bias), expected, rtol=1e-5, atol=1e-5)


def test_fbank_normalisation_is_the_official_one():
    wav = _audio(2, 0.5)
    expected = (kaldi_fbank(wav * 32768.0) - 15.41663) / (2 * 6.55582)
    assert (FBANK_MEAN, FBANK_STD) == (15.41663, 6.55582)
    torch.testing.assert_close(beats_fbank(wav), expected, rtol=0, atol=0)


def test_layerwise_gradient_decay_scales_gradients_not_values():
    base = _model()
    decayed = _model(layer_wise_gradient_decay_ratio=0.5)
    decayed.load_state_dict(base.state_dict())
    x = torch.randn(1, 10, 32, requires_grad=True)
    y = x.detach().clone().requires_grad_()
    out_base, out_decayed = base.encoder(x), decayed.encoder(y)
    torch.testing.assert_close(out_base, out_decayed, rtol=0, atol=0)
    out_base.sum().backward()
    out_decayed.sum().backward()
    torch.testing.assert_close(y.grad, 0.25 * x.grad)  # 0.5 before each of the 2 layers


# ------------------------------------------------------------------------------------------ model


def test_forward_shapes_one_and_two_seconds():
    model = _model()
    with torch.no_grad():
        one, mask = model.extract_features(_audio(3, 1.0))
        two, _ = model.extract_features(_audio(1, 2.0))
    assert one.shape == (3, 48, 32) and mask is None  # 98 frames -> 6 x 8 patches
    assert two.shape == (1, 96, 32)  # 198 frames -> 12 x 8
    assert torch.isfinite(one).all()


def test_features_are_deterministic_and_batch_independent():
    model = _model()
    wav = _audio(3, 1.0, seed=4)
    with torch.no_grad():
        a, _ = model.extract_features(wav)
        b, _ = model.extract_features(wav)
        single, _ = model.extract_features(wav[1:2])
    assert torch.equal(a, b)
    torch.testing.assert_close(a[1:2], single, rtol=1e-5, atol=1e-5)


def test_save_in_official_layout_then_load_gives_identical_features(tmp_path):
    model = _model(finetuned_model=True)
    path = tmp_path / "beats_tiny.pt"
    save_beats_checkpoint(model, path)
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"cfg", "model"} and set(raw["model"]) == _official_keys(2, finetuned=True)
    assert raw["cfg"]["finetuned_model"] is True
    loaded = load_beats_checkpoint(path)
    assert not loaded.training
    wav = _audio(2, 1.0, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(loaded.extract_features(wav)[0], model.extract_features(wav)[0], rtol=0, atol=0)
        torch.testing.assert_close(loaded.predict(wav), model.predict(wav), rtol=0, atol=0)
    # The same from the in-memory dict
    loaded2 = load_beats_checkpoint(raw)
    with torch.no_grad():
        torch.testing.assert_close(loaded2.extract_features(wav)[0], model.extract_features(wav)[0], rtol=0, atol=0)


def test_missing_and_unexpected_keys_are_listed():
    model = _model()
    state = dict(model.state_dict())
    del state["encoder.layers.1.fc2.bias"]
    del state["patch_embedding.weight"]
    state["encoder.layers.1.self_attn.extra_proj.weight"] = torch.zeros(1)
    with pytest.raises(DataError) as err:
        load_beats_checkpoint({"cfg": model.cfg.to_dict(), "model": state})
    msg = str(err.value)
    assert "missing keys (2): encoder.layers.1.fc2.bias, patch_embedding.weight" in msg
    assert "unexpected keys (1): encoder.layers.1.self_attn.extra_proj.weight" in msg


def test_shape_mismatch_and_bad_files_are_clear_errors(tmp_path):
    model = _model()
    state = dict(model.state_dict())
    state["encoder.layers.0.fc1.weight"] = torch.zeros(65, 32)
    expected = r"shape mismatches \(1\): encoder.layers.0.fc1.weight: checkpoint \(65, 32\) vs model \(64, 32\)"
    with pytest.raises(DataError, match=expected):
        load_beats_checkpoint({"cfg": model.cfg.to_dict(), "model": state})
    with pytest.raises(DataError, match="not found"):
        load_beats_checkpoint(tmp_path / "nope.pt")
    torch.save({"model": state}, tmp_path / "nocfg.pt")
    with pytest.raises(DataError, match=r"nocfg.pt: not a BEATs checkpoint"):
        load_beats_checkpoint(tmp_path / "nocfg.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="junk.pt: cannot read"):
        load_beats_checkpoint(tmp_path / "junk.pt")
    bad_cfg = {**model.cfg.to_dict(), "encoder_layers": "two"}
    with pytest.raises(DataError, match="bad BEATs cfg"):
        load_beats_checkpoint({"cfg": bad_cfg, "model": state})


def test_equivalent_layouts_load_shared_table_once_and_parametrized_weight_norm():
    model = _model()
    state = dict(model.state_dict())
    # the shared table stored once, and torch's parametrised weight-norm names
    del state["encoder.layers.1.self_attn.relative_attention_bias.weight"]
    state["encoder.pos_conv.0.parametrizations.weight.original0"] = state.pop("encoder.pos_conv.0.weight_g")
    state["encoder.pos_conv.0.parametrizations.weight.original1"] = state.pop("encoder.pos_conv.0.weight_v")
    loaded = load_beats_checkpoint({"cfg": model.cfg.to_dict(), "model": state})
    wav = _audio(1, 1.0)
    with torch.no_grad():
        torch.testing.assert_close(loaded.extract_features(wav)[0], model.extract_features(wav)[0], rtol=0, atol=0)
    # two different tables cannot both be right
    state = dict(model.state_dict())
    state["encoder.layers.1.self_attn.relative_attention_bias.weight"] = torch.zeros(32, 2)
    with pytest.raises(DataError, match="shares one relative position table"):
        load_beats_checkpoint({"cfg": model.cfg.to_dict(), "model": state})


def test_load_to_dtype():
    model = _model()
    loaded = load_beats_checkpoint({"cfg": model.cfg.to_dict(), "model": model.state_dict()}, dtype=torch.bfloat16)
    wav = _audio(1, 1.0)
    with torch.no_grad():
        half, _ = loaded.extract_features(wav)
        full, _ = model.extract_features(wav)
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), full, rtol=0.1, atol=0.1)


# ------------------------------------------------------------------------------------------ padding


def test_padding_mask_pools_samples_to_frames_to_patches_by_the_official_rule():
    # 2 s = 32000 samples, last 0.5 s padded. Frames: 198; 32000 % 198 = 122 samples dropped, 161 per
    # frame: frame j is padded iff 161 j >= 24000, i.e. j >= 150. Patches: 12 x 8 = 96; 198 % 96 = 6
    # frames dropped, 2 per patch: patch k is padded iff 2 k >= 150, i.e. k >= 75.
    pad = torch.zeros(1, 32000, dtype=torch.bool)
    pad[:, 24000:] = True
    frames = pool_padding_mask(pad, 198)
    assert frames[0].nonzero().flatten().tolist() == list(range(150, 198))
    patches = pool_padding_mask(frames, 96)
    assert patches[0].nonzero().flatten().tolist() == list(range(75, 96))
    model = _model()
    with torch.no_grad():
        _, mask = model.extract_features(_audio(1, 2.0), pad)
    assert torch.equal(mask, patches)


def test_padded_positions_do_not_change_the_others():
    model = _model()
    x = torch.randn(2, 12, 32)
    pad = torch.zeros(2, 12, dtype=torch.bool)
    pad[1, 8:] = True
    y = x.clone()
    y[1, 8:] = 100 * torch.randn(4, 32)  # anything in the padded positions
    with torch.no_grad():
        a, b = model.encoder(x, pad), model.encoder(y, pad)
    torch.testing.assert_close(a[:, :8], b[:, :8], rtol=0, atol=0)
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)


def test_all_false_mask_is_the_same_as_none_as_crab_passes_it():
    model = _model()
    wav = _audio(2, 1.0)
    with torch.no_grad():
        a, mask = model.extract_features(wav, torch.zeros_like(wav, dtype=torch.bool))
        b, _ = model.extract_features(wav)
    assert not mask.any()
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_predict_averages_logits_over_unpadded_patches():
    model = _model(finetuned_model=True)
    wav = _audio(1, 2.0)
    pad = torch.zeros(1, 32000, dtype=torch.bool)
    pad[:, 24000:] = True
    with torch.no_grad():
        feats, mask = model.extract_features(wav, pad)
        logits = model.predictor(feats)[0, :75]  # patches 0..74 are kept (see the pooling test)
        torch.testing.assert_close(model.predict(wav, pad)[0], torch.sigmoid(logits.mean(dim=0)))
    with pytest.raises(ValueError, match="no predictor"):
        _model().predict(wav)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.extract_features(torch.zeros(16000)), "batch, samples"),
        (lambda m: m.extract_features(torch.zeros(1, 2639)), "fewer than one 16-frame patch"),
        (lambda m: m.extract_features(torch.zeros(1, 16000), torch.ones(1, 16000, dtype=torch.bool)), "every position"),
        (lambda m: m.extract_features_from_fbank(torch.zeros(1, 98, 64)), "fbank must be"),
    ],
)
def test_bad_inputs_are_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(_model())


# ------------------------------------------------------------------------------------------ Crab segments


def test_crab_one_second_segments():
    wav = torch.arange(105.0)  # 10 "seconds" of int(105 / 10) = 10 samples; the 5 left over are dropped
    segs = crab_segments(wav, SegmentSpec(10))
    assert segs.shape == (10, 10)
    assert segs[3].tolist() == list(range(30, 40))
    assert segs[9].tolist() == list(range(90, 100))


def test_crab_music_avqa_windows():
    # 60 "seconds" of 10 samples; anchors 0, 6, ..., 54; window [s - 0.5, s + 1.5) = 20 samples
    wav = torch.arange(1.0, 601.0)
    segs = crab_segments(wav, CRAB_SEGMENTS["music_avqa"])
    assert segs.shape == (10, 20)
    assert segs[0].tolist() == [0.0] * 5 + list(range(1, 16))  # [0, 1.5 s) left-padded by 0.5 s
    assert segs[1].tolist() == list(range(56, 76))  # samples 55 .. 74 (values are index + 1)
    assert segs[9].tolist() == list(range(536, 556))
    # a window past the end is right-padded
    tail = crab_segments(torch.arange(1.0, 101.0), SegmentSpec(10, seconds=(9,), before=0.5, after=1.5))
    assert tail[0].tolist() == list(range(86, 101)) + [0.0] * 5  # [8.5 s, 10 s) then 0.5 s of zeros


def test_crab_segments_errors():
    with pytest.raises(ValueError, match="cannot be cut"):
        crab_segments(torch.zeros(9), SegmentSpec(10))
    with pytest.raises(ValueError, match="samples,"):
        crab_segments(torch.zeros(2, 100), SegmentSpec(10))
    with pytest.raises(ValueError, match="anchor seconds"):
        SegmentSpec(5, seconds=(5,))
    with pytest.raises(ValueError, match="total_seconds >= 1"):
        SegmentSpec(0)


def test_segment_features_encode_each_segment_on_its_own():
    model = _model()
    wav = _audio(1, 3.0, seed=7)[0]
    segs = crab_segments(wav, SegmentSpec(3))
    with torch.no_grad():
        feats = model.extract_segment_features(segs.unsqueeze(0))  # (B=1, t=3, 48, 32)
        second, _ = model.extract_features(wav[16000:32000].unsqueeze(0))
    assert feats.shape == (1, 3, 48, 32)
    torch.testing.assert_close(feats[0, 1], second[0], rtol=1e-5, atol=1e-5)
