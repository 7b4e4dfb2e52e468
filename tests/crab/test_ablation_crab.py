"""`--ablate` on crab-tiny: the runner's silenced audio (blanked frames) changes exactly the model's audio
(visual) tokens in the LLM's input, and so its logits; the CLI runs it end to end."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from avbench.adapters.crab.adapter import CrabAdapter
from avbench.cli import app
from avbench.runner import RunConfig, run


def _llm_inputs(adapter: CrabAdapter, root: Path, out: Path, ablate: str | None):
    """The spliced LLM inputs (`PreparedSample`s) crab builds for the first two AVE test samples in a real run."""
    model = adapter.loaded.model
    captured = []
    prepare_batch = type(model).prepare_batch

    def spy(items):
        prepared = prepare_batch(model, items)
        captured.extend(prepared)
        return prepared

    # an instance attribute over the class's method, deleted on exit (pytest 9's monkeypatch restores it as
    # an instance attribute holding the bound method, which would outlive the test on the shared model)
    model.prepare_batch = spy
    try:
        run(adapter, RunConfig(model="crab", tasks=["ave"], output_dir=out, data_root=root, limit=2, batch_size=2,
                               bootstrap=None, ablate=ablate))
    finally:
        del model.prepare_batch
    assert "prepare_batch" not in vars(model)
    return captured


def test_ablation_changes_only_the_ablated_modality_tokens_and_the_logits(tiny_crab, synthav_tiny: Path,
                                                                          tmp_path: Path) -> None:
    adapter = CrabAdapter.from_loaded(tiny_crab, max_new_tokens=1)
    normal = _llm_inputs(adapter, synthav_tiny, tmp_path / "normal", None)
    silenced = _llm_inputs(adapter, synthav_tiny, tmp_path / "no-audio", "audio")
    blanked = _llm_inputs(adapter, synthav_tiny, tmp_path / "no-video", "video")
    assert len(normal) == len(silenced) == len(blanked) == 2
    for plain, no_audio, no_video in zip(normal, silenced, blanked):
        counts = plain.media_counts
        assert counts == {"<video>": 40, "<audio>": 40}  # 10 frames and 10 one-second segments, 4 tokens each
        for ablated, changed in ((no_audio, "<audio>"), (no_video, "<video>")):
            # same prompt layout: the ablated modality keeps its token count, the text tokens are unchanged
            assert ablated.media_counts == counts and torch.equal(ablated.token_ids, plain.token_ids)
            differs = (ablated.embeds - plain.embeds).abs().amax(dim=1) > 1e-6
            assert int(differs.sum()) == counts[changed]  # every token of that modality changed, nothing else
            assert not differs[plain.token_ids != -1].any()
        # the mask decoder's frame features follow the frames: unchanged without audio, changed without video
        assert all(torch.equal(a, b) for a, b in zip(no_audio.frame_features, plain.frame_features))
        assert not any(torch.allclose(a, b) for a, b in zip(no_video.frame_features, plain.frame_features))
    lm = tiny_crab.model
    with torch.inference_mode():
        logits = [lm.causal_lm(inputs_embeds=s.embeds[None]).logits[0, -1] for s in (normal[0], silenced[0])]
    assert (logits[0] - logits[1]).abs().max() > 1e-4


def test_cli_ablate_audio_runs_crab_and_names_the_ablation(tiny_checkpoint: Path, synthav_tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "run", "--model", "crab", "--checkpoint", str(tiny_checkpoint), "--tasks", "music_avqa", "--limit", "2",
        "--max-new-tokens", "4", "--synthav-size", "tiny", "--device", "cpu", "--output-dir", str(out),
        "--bootstrap", "0", "--ablate", "audio",
    ])
    assert result.exit_code == 0, result.output
    assert "model crab (no audio)" in result.output
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["ablate"] == "audio"
    assert results["model"]["name"] == "crab (no audio)" and results["model"]["config"] == "crab-tiny"
    assert results["tasks"]["music_avqa"]["n_samples"] == 2
