"""`--model crab`: the adapter on decoded SynthAV media, its mask outputs, and the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from avbench.adapters.crab.adapter import CrabAdapter, resolve_device, resolve_dtype
from avbench.adapters.crab.generation import Generation
from avbench.adapters.crab.prompts import encode, mask_answer
from avbench.cli import app
from avbench.errors import AVBenchError, ModelUnavailableError
from avbench.media import decode_media
from avbench.registry import get_model, get_task
from avbench.scoring import parse_output

ALL_TASKS = ("ave", "avvp", "music_avqa", "arig", "s4", "ms3", "avss", "ref_avs")


@pytest.fixture(scope="module")
def adapter(tiny_checkpoint: Path) -> CrabAdapter:
    return get_model("crab", checkpoint=str(tiny_checkpoint), max_new_tokens=6)


def _batch(task_name: str, root: Path, adapter: CrabAdapter, n: int = 2):
    task = get_task(task_name)
    samples = task.load(root, task.default_split)[:n]
    return task, samples, [task.build_prompt(s) for s in samples], [decode_media(s, adapter.media_spec) for s in samples]


def test_options_are_checked(tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from avbench.adapters.crab import adapter as crab_adapter

    monkeypatch.setattr(crab_adapter, "BUNDLED_CHECKPOINT", tiny_checkpoint)  # the default weights when none are given
    assert get_model("crab").loaded.path == tiny_checkpoint
    monkeypatch.setattr(crab_adapter, "BUNDLED_CHECKPOINT", tiny_checkpoint / "missing")
    with pytest.raises(ModelUnavailableError, match="bundled crab-tiny checkpoint is missing"):
        get_model("crab")
    with pytest.raises(AVBenchError, match="unknown dtype 'float8'"):
        CrabAdapter(checkpoint=tiny_checkpoint, dtype="float8")
    with pytest.raises(AVBenchError, match="does not take the options"):
        CrabAdapter(checkpoint=tiny_checkpoint, temperature=0.7)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    if not torch.cuda.is_available():
        with pytest.raises(AVBenchError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_every_task_gets_one_deterministic_output_per_sample(adapter: CrabAdapter, synthav_tiny: Path) -> None:
    for name in ALL_TASKS:
        task, samples, prompts, media = _batch(name, synthav_tiny, adapter)
        first = adapter.predict(task, samples, prompts, media=media)
        assert len(first) == len(samples) and all(isinstance(o.text, str) for o in first), name
        for output, sample in zip(first, samples):
            parse_output(task, sample, output)  # never raises: failures are recorded
        if name in ("ave", "s4"):
            again = adapter.predict(task, samples[::-1], prompts[::-1], media=media[::-1])
            assert [o.text for o in again] == [o.text for o in first[::-1]], name
    info = adapter.describe()
    assert info["config"] == "crab-tiny" and info["dtype"] == "float32" and info["device"] == "cpu"
    assert info["checkpoint_layout"] == "avbench" and len(info["checkpoint_hash"]) == 16 and info["parameters"] > 10**6


@pytest.mark.parametrize("name", ["s4", "ms3", "avss", "ref_avs"])
def test_mask_groups_become_one_map_per_frame(adapter: CrabAdapter, synthav_tiny: Path, monkeypatch, name: str) -> None:
    """With an answer holding one mask-token group per frame (generation stubbed: an untrained model
    rarely emits them), the adapter decodes one map per listed frame, in the task's format."""
    task, samples, prompts, media = _batch(name, synthav_tiny, adapter, n=1)
    model, tokenizer = adapter.loaded.model, adapter.loaded.tokenizer
    n_frames = len(samples[0].media["frames"])
    answer = encode(tokenizer, "The object is a dog. " + mask_answer(n_frames))
    states = torch.randn(len(answer), adapter.loaded.config.llm_hidden, generator=torch.Generator().manual_seed(1))
    prompt_state = torch.randn(adapter.loaded.config.llm_hidden, generator=torch.Generator().manual_seed(2))
    monkeypatch.setattr(model, "generate", lambda prepared, budget: Generation([answer], [states], [prompt_state]))
    output = adapter.predict(task, samples, prompts, media=media)[0]
    assert output.masks is not None and len(output.masks) == n_frames
    for mask in output.masks:
        assert mask.shape == (224, 224)
        if name == "avss":
            assert mask.dtype == np.int64 and 0 <= mask.min() and mask.max() < 71
        else:
            assert mask.dtype == np.float32 and 0.0 <= mask.min() and mask.max() <= 1.0
    prediction = parse_output(task, samples[0], output)
    assert prediction.ok, prediction.parse_error
    # frame k's map comes from group k against frame k: the first map equals decoding group 0 alone
    with torch.inference_mode():
        from avbench.adapters.crab.preprocess import prepare_media

        inputs = prepare_media(name, samples[0], media[0], 224)
        _, features = model.encode_frames(inputs.pixels)
        # each mask token brings the state that predicted the token before it (Crab's inference);
        # the answer starts with text, so that is states[j - 1]
        keep = [j - 1 for j, t in enumerate(answer) if t in set(model.token_ids.mask_ids)][:6]
        logits = model.decode_masks(states[keep], features, [0], semantic=name == "avss")
    expected = logits[0].argmax(0).numpy() if name == "avss" else torch.sigmoid(logits[0, 0]).numpy()
    np.testing.assert_allclose(output.masks[0], expected, rtol=1e-5, atol=1e-6)


def test_the_mask_decoder_reads_the_state_that_predicted_the_token_before_each_mask_token(
        adapter: CrabAdapter, synthav_tiny: Path, monkeypatch, scripted_head) -> None:
    """As Crab's inference (`generate_avs`): with the answer teacher-forced through `predict`, the decoder
    input of mask token p (a position in prompt + answer) is the last-layer state at p - 2 of one plain
    forward pass over prompt + answer, not the state at p - 1 that Crab trains on."""
    task, samples, prompts, media = _batch("ms3", synthav_tiny, adapter, n=1)
    model, tokenizer = adapter.loaded.model, adapter.loaded.tokenizer
    n_frames = len(samples[0].media["frames"])
    answer = encode(tokenizer, "The object is a dog. " + mask_answer(n_frames)) + [model.token_ids.eos]
    seen: dict[str, object] = {}
    generate, decode = model.generate, model.decode_masks

    def spy_generate(prepared, budget):
        seen["prompt"] = prepared[0].embeds
        return generate(prepared, budget)

    def spy_decode(states, features, frames, semantic):
        seen["decoder_input"] = states.clone()
        return decode(states, features, frames, semantic)

    monkeypatch.setattr(model, "generate", spy_generate)
    monkeypatch.setattr(model, "decode_masks", spy_decode)
    adapter.max_new_tokens, budget = len(answer), adapter.max_new_tokens
    try:
        with scripted_head(model.causal_lm, answer):
            output = adapter.predict(task, samples, prompts, media=media)[0]
    finally:
        adapter.max_new_tokens = budget
    assert output.text == tokenizer.decode(answer[:-1]) and len(output.masks) == n_frames
    prompt = seen["prompt"]
    with torch.inference_mode():
        sequence = torch.cat([prompt, model.embed_tokens(torch.tensor(answer))])
        hidden = model.causal_lm.model(inputs_embeds=sequence[None]).last_hidden_state[0]
    mask_positions = [prompt.shape[0] + j for j, t in enumerate(answer) if t in set(model.token_ids.mask_ids)]
    assert len(mask_positions) == 6 * n_frames
    torch.testing.assert_close(seen["decoder_input"], hidden[[p - 2 for p in mask_positions]], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(seen["decoder_input"], hidden[[p - 1 for p in mask_positions]], atol=1e-2)


def test_default_budget_is_crabs_per_mask_budget_times_the_masks_asked_for(
        adapter: CrabAdapter, synthav_tiny: Path, scripted_head) -> None:
    """Crab gives each segmentation answer (one mask) 100 new tokens; avbench asks for every frame's mask
    in one answer, so the default budget must scale with the frames: a Crab-style answer for 10 frames
    (text before each mask group) runs past 100 tokens and would lose its last groups."""
    task, samples, prompts, media = _batch("ref_avs", synthav_tiny, adapter, n=1)
    model, tokenizer = adapter.loaded.model, adapter.loaded.tokenizer
    n_frames = len(samples[0].media["frames"])
    ordinals = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
    text = " ".join(f"The mask of the object at the {ordinals[k]} second is {mask_answer(1)}." for k in range(n_frames))
    answer = encode(tokenizer, text) + [model.token_ids.eos]
    assert n_frames == 10 and task.max_new_tokens == 100 and 100 < len(answer) <= 100 * n_frames
    adapter.max_new_tokens, budget = None, adapter.max_new_tokens
    try:
        with scripted_head(model.causal_lm, answer):
            output = adapter.predict(task, samples, prompts, media=media)[0]
    finally:
        adapter.max_new_tokens = budget
    assert output.text == tokenizer.decode(answer[:-1])
    assert output.masks is not None and len(output.masks) == n_frames


def test_no_mask_tokens_means_no_maps(adapter: CrabAdapter, synthav_tiny: Path, monkeypatch) -> None:
    task, samples, prompts, media = _batch("s4", synthav_tiny, adapter, n=1)
    model = adapter.loaded.model
    answer = encode(adapter.loaded.tokenizer, "A dog barks.")
    monkeypatch.setattr(model, "generate", lambda p, b: Generation([answer], [torch.zeros(len(answer), adapter.loaded.config.llm_hidden)], [None]))
    output = adapter.predict(task, samples, prompts, media=media)[0]
    assert output.masks is None and not parse_output(task, samples[0], output).ok


def test_predict_requires_media(adapter: CrabAdapter, synthav_tiny: Path) -> None:
    task, samples, prompts, _ = _batch("ave", synthav_tiny, adapter, n=1)
    with pytest.raises(AVBenchError, match="reads media"):
        adapter.predict(task, samples, prompts)


def test_cli_runs_every_task_end_to_end(tiny_checkpoint: Path, synthav_tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "run", "--model", "crab", "--checkpoint", str(tiny_checkpoint), "--tasks", "all", "--limit", "2",
        "--max-new-tokens", "8", "--synthav-size", "tiny", "--device", "cpu", "--dtype", "float32",
        "--output-dir", str(out), "--bootstrap", "0",
    ])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert sorted(results["tasks"]) == sorted(ALL_TASKS)
    assert all(results["tasks"][t]["n_samples"] == 2 for t in ALL_TASKS)
    model_info = json.dumps(results)
    assert "crab-tiny" in model_info and "checkpoint_hash" in model_info
    for name in ALL_TASKS:
        lines = (out / f"{name}_test.jsonl").read_text().splitlines()
        assert len(lines) == 2 and all(json.loads(line)["raw_output"] is not None for line in lines)


def test_a_rerun_refuses_to_mix_predictions_of_other_weights_or_config_at_the_same_path(
        tiny_checkpoint: Path, synthav_tiny: Path, tmp_path: Path) -> None:
    """run.json records the checkpoint's weight and config hashes: a checkpoint folder retrained or
    reconfigured in place (e.g. `seg.masks_follow_answer` flipped, which changes masks, not weights) must
    not resume into predictions of the old one."""
    import shutil

    checkpoint, out = tmp_path / "ckpt", tmp_path / "run"
    shutil.copytree(tiny_checkpoint, checkpoint)
    command = ["run", "--model", "crab", "--checkpoint", str(checkpoint), "--tasks", "ave", "--limit", "1",
               "--max-new-tokens", "4", "--synthav-size", "tiny", "--output-dir", str(out), "--bootstrap", "0"]
    assert CliRunner().invoke(app, command).exit_code == 0
    recorded = json.loads((out / "run.json").read_text())["model_fingerprint"]
    assert recorded == get_model("crab", checkpoint=str(checkpoint)).fingerprint() and len(recorded["config_hash"]) == 16
    assert CliRunner().invoke(app, command).exit_code == 0  # unchanged: resumes
    config = json.loads((checkpoint / "config.json").read_text())
    config["config"]["seg"]["masks_follow_answer"] = True
    (checkpoint / "config.json").write_text(json.dumps(config))
    refused = CliRunner().invoke(app, command)
    assert refused.exit_code != 0 and "holds a run of" in refused.output and "--overwrite" in refused.output
    assert CliRunner().invoke(app, [*command, "--overwrite"]).exit_code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["model"]["masks_follow_answer"] is True and results["model"]["config_hash"] != recorded["config_hash"]


@pytest.mark.parametrize("name", ["ave", "music_avqa", "s4", "arig"])
def test_audio_too_short_for_crabs_segments_is_padded_not_fatal(name: str) -> None:
    """A truncated audio track (0.1 s) still gives every segment one BEATs patch: silence is appended."""
    from avbench.adapters.crab.beats import BEATs, BEATsConfig
    from avbench.adapters.crab.preprocess import prepare_media
    from avbench.media import DecodedMedia
    from avbench.types import Sample

    sample = Sample("x", name, "test", {"video": "x.mp4"})
    media = DecodedMedia(frames=np.zeros((10, 32, 32, 3), dtype=np.uint8), audio=np.full(1600, 0.1, dtype=np.float32))
    inputs = prepare_media(name, sample, media, 32)
    assert inputs.segments is not None and inputs.segments.shape[-1] >= 2800
    with torch.inference_mode():
        features = BEATs(BEATsConfig.tiny()).eval().extract_segment_features(inputs.segments)
    assert features.shape[0] == inputs.segments.shape[0] and features.shape[1] >= 1
    # all of the real audio is kept (MUSIC-AVQA's overlapping windows may hold some of it twice), the rest is silence
    assert int((inputs.segments == 0.1).sum()) >= 1600 and float(inputs.segments[-1].abs().sum()) == 0.0


def test_the_bundled_crab_tiny_is_the_default_and_matches_its_provenance() -> None:
    import re

    from avbench.adapters.crab.adapter import BUNDLED_CHECKPOINT, default_checkpoint
    from avbench.adapters.crab.checkpoint import file_digest

    assert default_checkpoint() == BUNDLED_CHECKPOINT
    weights = BUNDLED_CHECKPOINT / "model.safetensors"
    assert weights.stat().st_size <= 20 * 1024 * 1024
    provenance = (BUNDLED_CHECKPOINT / "PROVENANCE.md").read_text()
    assert "avbench train --config configs/crab-tiny.yaml" in provenance
    assert re.search(r"sha256 prefix `([0-9a-f]{16})`", provenance).group(1) == file_digest([weights])
