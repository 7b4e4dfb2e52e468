"""tools/gpu_check.py on its CPU path (crab-tiny, two tasks, batch sizes 1 and 2, two new tokens)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from avbench.adapters.crab.beats import CRAB_SEGMENTS
from avbench.adapters.crab.prompts import chat_prompt, encode
from avbench.adapters.crab.tokenizer import PLACEHOLDERS, build_tiny_tokenizer
from avbench.registry import get_task

TOOL = Path(__file__).resolve().parents[2] / "tools" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("avbench_tools_gpu_check", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through sys.modules
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def _prompt_tokens(task_name: str, root: Path) -> int:
    """By hand: text tokens, less the placeholders, plus 4 tokens per frame and per audio segment."""
    task = get_task(task_name)
    sample = task.load(root, task.default_split)[0]
    tokenizer = build_tiny_tokenizer()
    ids = encode(tokenizer, chat_prompt(task.build_prompt(sample), "You are a helpful assistant."))
    placeholders = {tokenizer.convert_tokens_to_ids(p) for p in PLACEHOLDERS}
    listed = sample.media.get("frames")
    frames = len(listed) if isinstance(listed, list) else 10
    return len(ids) - sum(t in placeholders for t in ids) + 4 * frames + 4 * len(CRAB_SEGMENTS[task_name].anchors())


def test_cpu_path_reports_every_row(gpu_check, synthav_tiny: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "check.json"
    assert gpu_check.main(["--preset", "tiny", "--device", "cpu", "--dtype", "float32", "--max-new-tokens", "2",
                           "--batch-sizes", "1,2", "--tasks", "ave,s4", "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    assert (report["preset"], report["device"], report["dtype"], report["max_new_tokens"]) == ("tiny", "cpu", "float32", 2)
    assert report["parameters"] == 4_702_600 and report["weights_gib"] is None
    rows = report["rows"]
    assert [(r["task"], r["batch_size"]) for r in rows] == [("ave", 1), ("ave", 2), ("s4", 1), ("s4", 2)]
    for row in rows:
        expected = _prompt_tokens(row["task"], synthav_tiny)
        # SynthAV tiny has 2 samples of these tasks, so batch 2 holds both: compare the first one's length
        assert row["prompt_tokens_min"] <= expected <= row["prompt_tokens_max"], row
        if row["batch_size"] == 1:
            assert row["prompt_tokens_min"] == row["prompt_tokens_max"] == expected
        # seeded random crab-tiny runs its whole budget here (no EOS within two tokens)
        assert row["new_tokens"] == 2 * row["batch_size"]
        assert row["samples_per_second"] == pytest.approx(row["batch_size"] / row["seconds_per_batch"], rel=1e-2)
        assert row["tokens_per_second"] == pytest.approx(row["new_tokens"] / row["seconds_per_batch"], rel=1e-2)
        assert (row["mask_decoder_seconds"] is not None) == (row["task"] == "s4") and row["peak_memory_gib"] is None
    table = capsys.readouterr().out
    assert "| task | batch | prompt tokens |" in table and table.count("\n| ave |") == 2 and table.count("\n| s4 |") == 2
    assert "4.70 M parameters" in table


def test_bad_arguments_are_refused(gpu_check) -> None:
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--tasks", "ave,nope"])
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--batch-sizes", "0"])


def test_full_preset_is_built_with_llama2_vocabulary_and_the_small_tokenizer(gpu_check) -> None:
    """On the meta device (no memory): the full model the GPU check times has LLaMA-2's 32000 + 17 rows
    while its prompts come from crab-tiny's tokenizer, whose Crab tokens the model uses."""
    import torch

    from avbench.adapters.crab.tokenizer import crab_token_ids

    loaded = gpu_check.random_crab("full", torch.device("meta"), torch.bfloat16, seed=0)
    model = loaded.model
    assert model.causal_lm.get_input_embeddings().weight.shape == (32017, 4096)
    assert model.causal_lm.lm_head.weight.shape == (32017, 4096) and model.dtype == torch.bfloat16
    assert model.token_ids.added == crab_token_ids(loaded.tokenizer) and max(model.token_ids.added.values()) < 1402
    assert loaded.config.llm["vocab_size"] == 32000 and loaded.config.name == "crab-7b"
