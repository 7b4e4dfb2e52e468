"""`avbench analyze heads` on crab-tiny: router-weight bookkeeping over a cached generation checked
against one plain forward by hand, head switching, and the four output files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from avbench.adapters.crab import head_analysis
from avbench.adapters.crab.adapter import CrabAdapter
from avbench.adapters.crab.checkpoint import load_checkpoint, save_checkpoint
from avbench.adapters.crab.generation import Generation
from avbench.adapters.crab.head_analysis import (
    AnalysisConfig, RouterRecorder, emitted_counts, layer_of, position_masks, router_report, run_head_analysis,
)
from avbench.adapters.crab.ilora import ilora_layers, record_router_history, record_router_weights, set_active_heads
from avbench.cli import app
from avbench.media import decode_media
from avbench.registry import get_task


@pytest.fixture(scope="module")
def headed_checkpoint(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """crab-tiny with random, distinct I-LoRA heads: a random checkpoint's heads are zero (Crab's init), so
    switching one off would change nothing."""
    loaded = load_checkpoint(tiny_checkpoint)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for layer in ilora_layers(loaded.model.llm):
            weight = layer.lora_B["default"].weight
            weight.copy_(0.5 * torch.randn(weight.shape, generator=generator))
    return save_checkpoint(loaded.model, loaded.tokenizer, tmp_path_factory.mktemp("crab-tiny-heads"))


@pytest.fixture(scope="module")
def headed_adapter(headed_checkpoint: Path) -> CrabAdapter:
    return CrabAdapter(checkpoint=headed_checkpoint, max_new_tokens=8)


def _batch(adapter: CrabAdapter, root: Path, name: str = "ave", n: int = 2):
    task = get_task(name)
    samples = task.load(root, "test")[:n]
    return task, samples, [task.build_prompt(s) for s in samples], [decode_media(s, adapter.media_spec) for s in samples]


def test_position_masks_select_answer_and_prompt_positions_by_hand() -> None:
    # row 0: no padding, emitted 3 tokens; row 1: 2 pads, finished after 1 token (EOS) and was fed pads after
    masks = position_masks(offsets=[0, 2], prompt_length=5, emitted=[3, 1], total=7)
    assert masks["answer"].int().tolist() == [[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 0, 0]]
    assert masks["prompt"].int().tolist() == [[1, 1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 0, 0]]
    # a row shorter than the steps decoded stopped on an EOS (counted); one as long ran out of budget
    assert emitted_counts(Generation([[4, 5], [4, 5, 6]], [], []), steps=3) == [3, 3]
    assert emitted_counts(Generation([[], [1, 2, 3]], [], []), steps=3) == [1, 3]
    assert layer_of("base_model.model.model.layers.12.mlp.up_proj") == "layer 12" and layer_of("lm_head") == "other"


def test_router_means_equal_a_hand_average_over_one_plain_forward(tiny_crab, synthav_tiny: Path, scripted_head,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch of 2 (left padded), answer forced to two tokens then EOS: the recorder's per-layer means equal
    the router weights of one teacher-forced forward per sample, averaged by hand over the positions that
    produced the 3 emitted tokens (and over the prompt positions), and each is a distribution over heads."""
    adapter = CrabAdapter.from_loaded(tiny_crab, max_new_tokens=8)
    model = tiny_crab.model
    task, samples, prompts, media = _batch(adapter, synthav_tiny, "music_avqa")  # questions of different lengths
    recorder = RouterRecorder(adapter)
    prepared = []
    prepare_batch = type(model).prepare_batch

    def spy(items):  # keeps the LLM inputs the adapter builds, to compute the same numbers by hand
        prepared.extend(prepare_batch(model, items))
        return prepared

    answer = [11, 12, model.token_ids.eos]
    with monkeypatch.context() as patch, scripted_head(model.causal_lm, answer):
        patch.setattr(model, "prepare_batch", spy)
        recorder.predict(task, samples, prompts, media=media)
    assert "generate" not in vars(model) and all(layer.router_history is None for layer in ilora_layers(model.llm))
    assert len({p.embeds.shape[0] for p in prepared}) == 2  # different prompt lengths: the batch was padded
    report = router_report(recorder.sums, recorder.module_names, n_heads=3)
    entry = report["tasks"]["music_avqa"]
    assert entry["n_samples"] == 2 and entry["n_positions"] == {
        "answer": 2 * 3, "prompt": sum(p.embeds.shape[0] for p in prepared)}

    sums = {"answer": 0.0, "prompt": 0.0}
    body = model.causal_lm.model
    for sample in prepared:
        length = sample.embeds.shape[0]
        full = torch.cat([sample.embeds, model.embed_tokens(torch.tensor(answer[:-1]))])[None]
        with torch.inference_mode(), record_router_weights(model.llm) as weights:
            body(inputs_embeds=full)
            stacked = torch.stack([weights[name][0] for name in recorder.module_names])  # (modules, T, N)
        sums["answer"] = sums["answer"] + stacked[:, length - 1 : length + 2].sum(dim=1)
        sums["prompt"] = sums["prompt"] + stacked[:, :length].sum(dim=1)
    for kind, count in entry["n_positions"].items():
        per_module = sums[kind] / count
        per_layer = torch.stack([per_module[i : i + 7].mean(dim=0) for i in range(0, per_module.shape[0], 7)])
        assert [layer_of(n) for n in recorder.module_names[::7]] == report["layers"] == [f"layer {i}" for i in range(4)]
        torch.testing.assert_close(torch.tensor(entry[kind]["per_layer"]), per_layer.float(), rtol=0, atol=1e-5)
        torch.testing.assert_close(torch.tensor(entry[kind]["per_layer"]).sum(dim=1), torch.ones(4), rtol=0, atol=1e-5)
        torch.testing.assert_close(torch.tensor(entry[kind]["mean"]), per_layer.mean(dim=0).float(), rtol=0, atol=1e-5)
    # one task per family here: the family's and the overall means are the task's
    assert report["families"]["spatiotemporal"]["answer"] == entry["answer"] == report["all"]["answer"]


def test_router_history_lines_up_with_the_positions_of_the_generated_sequence(tiny_crab, synthav_tiny: Path) -> None:
    adapter = CrabAdapter.from_loaded(tiny_crab, max_new_tokens=6)
    model = tiny_crab.model
    task, samples, prompts, media = _batch(adapter, synthav_tiny, n=1)
    from avbench.adapters.crab.preprocess import prepare_media
    from avbench.adapters.crab.prompts import chat_prompt, encode

    sample_media = prepare_media("ave", samples[0], media[0], tiny_crab.config.image_size)
    ids = encode(tiny_crab.tokenizer, chat_prompt(prompts[0], tiny_crab.config.system_prompt))
    prepared = model.prepare(ids, sample_media.pixels, sample_media.segments)
    name = "base_model.model.model.layers.2.mlp.down_proj"
    with record_router_history(model.llm) as history:
        generation = model.generate([prepared], 6)
        joined = history[name]
        assert len(history) == 28
        history.clear()
        assert len(history) == 0
    tokens = generation.tokens[0]
    assert len(tokens) == 6  # a random model runs its whole budget: 1 prompt forward + 5 fed-back tokens
    assert joined.shape == (1, prepared.embeds.shape[0] + 5, 3)
    full = torch.cat([prepared.embeds, model.embed_tokens(torch.tensor(tokens[:-1]))])[None]
    with torch.inference_mode(), record_router_weights(model.llm) as weights:
        model.causal_lm.model(inputs_embeds=full)
        torch.testing.assert_close(joined, weights[name], rtol=1e-4, atol=1e-5)


def test_switching_a_head_off_changes_the_logits(headed_adapter: CrabAdapter, synthav_tiny: Path) -> None:
    model = headed_adapter.loaded.model
    _, samples, prompts, media = _batch(headed_adapter, synthav_tiny, n=1)
    from avbench.adapters.crab.preprocess import prepare_media
    from avbench.adapters.crab.prompts import chat_prompt, encode

    sample_media = prepare_media("ave", samples[0], media[0], headed_adapter.loaded.config.image_size)
    ids = encode(headed_adapter.loaded.tokenizer, chat_prompt(prompts[0], headed_adapter.loaded.config.system_prompt))
    embeds = model.prepare(ids, sample_media.pixels, sample_media.segments).embeds[None]

    def logits() -> torch.Tensor:
        with torch.inference_mode():
            return model.causal_lm(inputs_embeds=embeds).logits[0, -1]

    full = logits()
    try:
        ablated = []
        for head in range(3):
            set_active_heads(model.llm, [i != head for i in range(3)])
            ablated.append(logits())
    finally:
        set_active_heads(model.llm, None)
    for one in ablated:
        assert (one - full).abs().max() > 1e-3
    assert (ablated[0] - ablated[1]).abs().max() > 1e-3 and (ablated[1] - ablated[2]).abs().max() > 1e-3
    torch.testing.assert_close(logits(), full, rtol=0, atol=0)


def test_heads_are_switched_back_on_when_an_ablation_run_fails(headed_adapter: CrabAdapter, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    masks_seen = []

    def fake_run(adapter, config, heads_off, progress):
        masks_seen.append([None if layer.head_mask is None else layer.head_mask.tolist()
                           for layer in ilora_layers(headed_adapter.loaded.model.llm)][0])
        if heads_off is not None:
            raise KeyboardInterrupt
        return tmp_path, []

    monkeypatch.setattr(head_analysis, "_run_folder", fake_run)
    with pytest.raises(KeyboardInterrupt):
        run_head_analysis(headed_adapter, AnalysisConfig(tasks=["ave"], data_root=tmp_path, output_dir=tmp_path))
    assert masks_seen == [None, [0.0, 1.0, 1.0]]
    assert all(layer.head_mask is None for layer in ilora_layers(headed_adapter.loaded.model.llm))


def test_cli_writes_the_four_files_with_consistent_content(headed_checkpoint: Path, synthav_tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "heads"
    result = CliRunner().invoke(app, [
        "analyze", "heads", "--model", "crab", "--checkpoint", str(headed_checkpoint), "--tasks", "ave,music_avqa",
        "--limit", "2", "--max-new-tokens", "4", "--synthav-size", "tiny", "--device", "cpu", "--bootstrap", "50",
        "--output-dir", str(out),
    ])
    assert result.exit_code == 0, result.output
    router = json.loads((out / "router_weights.json").read_text())
    ablation = json.loads((out / "head_ablation.json").read_text())
    markdown = (out / "heads.md").read_text()
    assert list(router["tasks"]) == ["ave", "music_avqa"] and router["n_heads"] == 3
    assert set(router["families"]) == {"temporal", "spatiotemporal"}
    for name, entry in router["tasks"].items():
        assert entry["n_samples"] == 2 and 2 <= entry["n_positions"]["answer"] <= 2 * 4
        assert abs(sum(entry["answer"]["mean"]) - 1) < 1e-5
        assert f"| {name} | {entry['family']} | {entry['n_positions']['answer']} | " + \
               " | ".join(f"{w:.3f}" for w in entry["answer"]["mean"]) + " |" in markdown
    with Image.open(out / "router_heatmap.png") as image:
        # 4 layers + their mean as rows; 2 families x 3 heads as columns: wider than tall
        assert image.mode == "RGB" and image.width > 6 * 48 and image.height > 5 * 20
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["all-heads", "head-0-off", "head-1-off", "head-2-off"]
    base = json.loads((out / "runs" / "all-heads" / "results.json").read_text())
    assert {t: e["value"] for t, e in ablation["all_heads"].items()} == {
        "ave": base["tasks"]["ave"]["metrics"]["accuracy"], "music_avqa": base["tasks"]["music_avqa"]["metrics"]["avg"]}
    assert [run["head"] for run in ablation["ablations"]] == [0, 1, 2]
    for run in ablation["ablations"]:
        results = json.loads((out / run["run"] / "results.json").read_text())
        assert results["config"]["heads_off"] == [run["head"]]
        for name, delta in run["tasks"].items():
            metric = ablation["all_heads"][name]["metric"]
            assert delta["value"] == results["tasks"][name]["metrics"][metric]
            assert delta["delta"] == pytest.approx(delta["value"] - ablation["all_heads"][name]["value"])
            assert delta["interval"] == "paired" and delta["low"] <= delta["delta"] <= delta["high"]
    assert "## Head ablation" in markdown and "| ave | accuracy |" in markdown


def test_cli_skip_ablation_and_other_models(headed_checkpoint: Path, synthav_tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "heads"
    out.mkdir()
    (out / "head_ablation.json").write_text("{}")  # from an earlier analysis: removed, it would not match
    result = CliRunner().invoke(app, [
        "analyze", "heads", "--checkpoint", str(headed_checkpoint), "--tasks", "ave", "--limit", "1",
        "--max-new-tokens", "2", "--synthav-size", "tiny", "--device", "cpu", "--skip-ablation", "--output-dir", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["heads.md", "router_heatmap.png", "router_weights.json", "runs"]
    assert [p.name for p in (out / "runs").iterdir()] == ["all-heads"] and "## Head ablation" not in (out / "heads.md").read_text()
    other = CliRunner().invoke(app, ["analyze", "heads", "--model", "prior", "--tasks", "ave"])
    assert other.exit_code == 2 and "only model 'crab' has; got --model 'prior'" in " ".join(other.output.split())
