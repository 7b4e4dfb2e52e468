"""Checkpoints: our layout and the official release layout load back identical; bad keys are named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from avbench.adapters.crab import official
from avbench.adapters.crab.checkpoint import WEIGHTS_FILE, detect_layout, load_checkpoint, save_checkpoint
from avbench.adapters.crab.prompts import chat_prompt, encode
from avbench.adapters.crab.tokenizer import build_tiny_tokenizer
from avbench.errors import AVBenchError

PROMPT = "This is a video:\n<video_start><video><video_end>\nThis is an audio:\n<audio_start><audio><audio_end>\nSegment it."


def _outputs(loaded) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token logits of a fixed multimodal prompt and the mask logits of fixed mask-token states."""
    g = torch.Generator().manual_seed(7)
    pixels, segments = torch.randn(2, 3, 224, 224, generator=g), 0.1 * torch.randn(10, 16000, generator=g)
    states = torch.randn(12, loaded.config.llm_hidden, generator=g)
    ids = encode(loaded.tokenizer, chat_prompt(PROMPT, loaded.config.system_prompt))
    with torch.no_grad():
        sample = loaded.model.prepare(ids, pixels, segments)
        logits = loaded.model([sample]).logits
        masks = loaded.model.decode_masks(states, sample.frame_features, [1, 0], semantic=False)
        semantic = loaded.model.decode_masks(states[:6], sample.frame_features, [0], semantic=True)
    return logits, torch.cat([masks.flatten(), semantic.flatten()])


# ---- our layout ---------------------------------------------------------------------------------------


def test_our_layout_round_trips_to_identical_outputs(tiny_crab, tmp_path: Path) -> None:
    copy = save_checkpoint(tiny_crab.model, tiny_crab.tokenizer, tmp_path / "copy")
    again = load_checkpoint(copy)
    assert again.layout == "avbench" and again.checkpoint_hash == tiny_crab.checkpoint_hash
    before, after = _outputs(tiny_crab), _outputs(again)
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])


def test_our_layout_names_missing_and_unexpected_keys(tiny_checkpoint: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken)
    state = load_file(str(broken / WEIGHTS_FILE))
    removed = "visual_projector.2.bias"
    del state[removed]
    state["seg.decoder.extra_head.weight"] = torch.zeros(3)
    save_file(state, str(broken / WEIGHTS_FILE))
    with pytest.raises(AVBenchError) as error:
        load_checkpoint(broken)
    message = str(error.value)
    assert "1 missing keys: visual_projector.2.bias" in message
    assert "1 unexpected keys: seg.decoder.extra_head.weight" in message and str(broken) in message


def test_layout_detection_explains_what_a_checkpoint_is(tmp_path: Path) -> None:
    with pytest.raises(AVBenchError, match="not a Crab checkpoint"):
        detect_layout(tmp_path)
    with pytest.raises(AVBenchError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")


# ---- official layout ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def official_dir(tiny_crab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """crab-tiny written as the release lays it out (after giving it the values the release cannot hold)."""
    base = build_tiny_tokenizer(with_crab_tokens=False)
    model = tiny_crab.model
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    official.apply_release_defaults(model, len(base))
    config = model.config.to_dict()
    overrides = {k: config[k] for k in ("name", "vision_layers", "qformer", "seg", "ilora", "tokenizer")}
    directory = official.write_official_layout(model, base, tmp_path_factory.mktemp("official"), overrides)
    reference = _outputs(tiny_crab)
    model.load_state_dict(saved)  # the session's model stays as it was
    torch.save(reference, directory / "reference.pt")
    return directory


def test_official_layout_loads_to_identical_outputs(official_dir: Path) -> None:
    loaded = load_checkpoint(official_dir)
    assert loaded.layout == "official" and detect_layout(official_dir) == "official"
    logits, masks = torch.load(official_dir / "reference.pt")
    got_logits, got_masks = _outputs(loaded)
    assert torch.equal(got_logits, logits) and torch.equal(got_masks, masks)
    # the segmentation file carries the full embeddings: selecting it keeps the outputs (they were written equal)
    loaded.extra["official"].select_task(loaded.model, "avss")
    assert loaded.extra["official"].current == "avss"
    assert torch.equal(_outputs(loaded)[0], logits)


def test_official_files_hold_crab_key_names(official_dir: Path) -> None:
    finetune = torch.load(official_dir / official.FINETUNE_FILE)
    assert "base_model.model.model.vl_projector.visual_Qformer.bert.encoder.layer.0.attention.self.query.weight" in finetune
    assert "base_model.model.model.al_projector.audio_proj.2.weight" in finetune
    assert "base_model.model.model.layers.1.mlp.down_proj.lora_B2.weight" in finetune
    seg = torch.load(official_dir / official.SEG_FILES["avs"])
    assert "base_model.model.model.seg_module.mask_decoder.transformer.1.layers.0.norm4.weight" in seg
    assert "base_model.model.model.seg_module.text_hidden_fcs.0.2.weight" in seg
    assert "base_model.model.lm_head.weight" in seg
    assert not any(k.endswith("positional_encoding_gaussian_matrix") for k in seg)


@pytest.mark.parametrize("kind", ["missing", "unexpected"])
def test_official_layout_names_bad_keys(official_dir: Path, tmp_path: Path, kind: str) -> None:
    broken = tmp_path / "release"
    shutil.copytree(official_dir, broken)
    path = broken / official.FINETUNE_FILE
    weights = torch.load(path)
    if kind == "missing":
        key = "base_model.model.model.al_projector.audio_ln.bias"
        del weights[key]
        expected = "1 missing keys: audio_resampler.ln.bias"
    else:
        key = "base_model.model.model.vl_projector.visual_extra.weight"
        weights[key] = torch.zeros(2)
        expected = f"1 unexpected keys: {key.removeprefix('base_model.model.model.')}"
    torch.save(weights, path)
    with pytest.raises(AVBenchError) as error:
        load_checkpoint(broken)
    assert expected in str(error.value)


def test_official_segmentation_file_must_hold_the_whole_decoder(official_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "release"
    shutil.copytree(official_dir, broken)
    for name in official.SEG_FILES.values():
        weights = torch.load(broken / name)
        del weights["base_model.model.model.seg_module.mask_decoder.level_embed.weight"]
        torch.save(weights, broken / name)
    with pytest.raises(AVBenchError, match=r"1 missing keys: seg\.decoder\.level_embed\.weight"):
        load_checkpoint(broken)


def test_key_maps_invert_and_drop_only_unused_qformer_parts() -> None:
    assert official.qformer_key_to_ours("bert.encoder.layer.1.crossattention.self.key.weight") == \
        "encoder.layer.1.crossattention.attention.key.weight"
    assert official.qformer_key_to_ours("bert.embeddings.LayerNorm.bias") == "layernorm.bias"
    assert official.qformer_key_to_ours("bert.encoder.layer.0.output_query.LayerNorm.weight") == \
        "encoder.layer.0.output_query.LayerNorm.weight"
    for unused in ("bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.intermediate.dense.bias",
                   "bert.encoder.layer.1.output.LayerNorm.weight", "cls.predictions.transform.dense.weight"):
        assert official.qformer_key_to_ours(unused) is None
    with pytest.raises(AVBenchError):
        official.qformer_key_to_ours("bert.pooler.dense.weight")
    for ours in ("text_fc.2.bias", "neck.3.weight", "decoder.transformer.0.layers.1.layer_norm3.bias",
                 "decoder.transformer.1.layer_norm_final_attn.weight", "decoder.binary_classifier.weight",
                 "decoder.semantic_classifier.weight", "decoder.query_generator.layers.1.cross_attn.in_proj_weight"):
        assert official.seg_key_to_ours(official.seg_key_to_official(ours)) == "seg." + ours
    assert official.seg_key_to_official("decoder.binary_classifier.weight") == "mask_decoder.ms3_s4_classfier.weight"
