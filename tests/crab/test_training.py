"""The bundled training recipe: instruction export, recipe validation, data order, schedule, and the
trainer's promises (the loss falls, checkpoints reload to identical outputs, a resumed run equals an
uninterrupted one)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from avbench.adapters.crab.checkpoint import load_checkpoint
from avbench.adapters.crab.training.data import read_instructions
from avbench.adapters.crab.training.recipe import PARAMETER_GROUPS, load_config, parse_config
from avbench.adapters.crab.training.trainer import (
    LOG_FILE, Trainer, config_digest, group_of, latest_checkpoint, lr_factor, micro_batch, read_log, set_trainable, smoothed, stage_records,
)
from avbench.errors import AVBenchError, DataError
from avbench.registry import get_task
from avbench.results import git_revision
from avbench.synthav.instruct import TASKS, export_instructions
from avbench.task import load_samples
from avbench.tasks.arig import parse_boxes
from avbench.types import ModelOutput

ALL_GROUPS = sorted(PARAMETER_GROUPS)


@pytest.fixture(scope="module")
def instructions(synthav_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("instructions") / "train.jsonl"
    export_instructions(synthav_tiny, out)
    return out


def _recipe(out: Path, steps: int = 4, encoder_steps: int = 0, **stage: object) -> dict:
    encoders = [{"name": "encoders", "objective": "encoders", "steps": encoder_steps, "tasks": ["caption_second"],
                 "train": ["vision", "audio", "connectors"], "lr": 2e-3, "batch_size": 4}] if encoder_steps else []
    return {"name": "test", "output_dir": str(out), "threads": 1, "log_every": 100, "checkpoint_every": 100,
            "data": {"synthav_size": "tiny"}, "mask_loss_size": 112,
            "stages": [*encoders, {"name": "all", "steps": steps, "tasks": ["caption", *TASKS], "train": ALL_GROUPS,
                                   "lr": 2e-3, "warmup_steps": 1, "batch_size": 2, "max_masks": 1, **stage}]}


# ---- instruction data ------------------------------------------------------------------------------------
def test_exported_answers_score_full_marks_on_their_own_samples(synthav_tiny: Path, instructions: Path) -> None:
    """The answer of every text-task record, parsed by the task itself, is the sample's ground truth."""
    records = {json.loads(line)["id"]: json.loads(line) for line in instructions.read_text().splitlines()}
    primary = {"ave": "accuracy", "music_avqa": "avg", "arig": "ciou"}
    for name, metric in primary.items():
        task = get_task(name)
        samples = load_samples(task, synthav_tiny, "train")
        for sample in samples:
            record = records[f"{name}/{sample.id}"]
            parsed = task.parse(ModelOutput(record["answer"]), sample)
            assert task.aggregate([sample], [task.score(sample, parsed).stats])[metric] == pytest.approx(100.0), record
    # ARIG names the box's coarse position before the box
    for record in (r for r in records.values() if r["task"] == "arig"):
        ((x1, y1, x2, y2),) = parse_boxes(record["answer"])
        where = f"{'bottom' if (y1 + y2 + 1) / 2 >= 112 else 'top'} {'right' if (x1 + x2 + 1) / 2 >= 112 else 'left'}"
        assert f", at the {where}. Its coordinates are <obj>" in record["answer"], record
    # Ref-AVS: the train split's null clips say the object is absent and are supervised with empty masks
    truth = json.loads((synthav_tiny / "synthav.json").read_text())
    ref_avs = [r for r in records.values() if r["task"] == "ref_avs"]
    for sample in load_samples(get_task("ref_avs"), synthav_tiny, "train"):
        record = records[f"ref_avs/{sample.id}"]
        null = truth["ref_avs"]["expressions"][sample.meta["uid"]]["referent"] is None
        said = "is not in the video." if null else f"is the {sample.target['referent']}."
        assert record["answer"].startswith(f"{sample.inputs['expression'].rstrip('.')} {said} At the first second"), record
        masks = [np.array(Image.open(synthav_tiny / f)) for f in record["masks"]["files"]]
        assert len(masks) == 10 and all(m.any() for m in masks) != null
    assert sum("is not in the video" in r["answer"] for r in ref_avs) == 3  # tiny's second train clip, 3 expressions
    # AVVP: the dense truth rendered as tags parses back to the synthav.json events
    avvp = get_task("avvp")
    for sample in load_samples(avvp, synthav_tiny, "train"):
        parsed = avvp.parse(ModelOutput(records[f"avvp/{sample.id}"]["answer"]), sample)
        for modality in ("audio", "visual"):
            got = sorted((name, on, off) for name, spans in parsed[modality].items() for on, off in spans)
            assert got == sorted(tuple(e) for e in truth["avvp"]["videos"][sample.id]["events"][modality])


def test_records_carry_the_task_prompt_media_and_mask_files(synthav_tiny: Path, instructions: Path) -> None:
    records = [json.loads(line) for line in instructions.read_text().splitlines()]
    by_task: dict[str, list[dict]] = {}
    for record in records:
        by_task.setdefault(record["task"], []).append(record)
    assert set(by_task) == {"caption", "caption_second", *TASKS}
    s4 = get_task("s4")
    sample = load_samples(s4, synthav_tiny, "train")[0]
    record = next(r for r in by_task["s4"] if r["id"] == f"s4/{sample.id}")
    assert record["instruction"] == s4.build_prompt(sample)
    assert record["answer"].count("<mask_start>") == len(sample.media["frames"]) == 5
    assert record["masks"] == {"kind": "binary", "frames": [0], "files": [str(Path(sample.target["masks"][0]).relative_to(synthav_tiny))]}
    assert all((synthav_tiny / p).is_file() for r in records for p in
               [v for m in r["media"].values() for v in (m if isinstance(m, list) else [m])])
    assert {r["masks"]["kind"] for r in by_task["avss"]} == {"semantic"}
    caption = by_task["caption"][0]["answer"]
    assert caption.startswith("Seen: ") and " Heard: " in caption
    # one description per second of every train clip: 10 per 10-second clip, one per listed AVSBench frame
    truth = json.loads((synthav_tiny / "synthav.json").read_text())
    ave_clip = next(v for v, c in truth["ave"]["videos"].items() if c["split"] == "train")
    seconds = [r for r in by_task["caption_second"] if r["id"].startswith(f"caption_second/ave/{ave_clip}/")]
    assert [r["second"] for r in seconds] == list(range(10))
    segment = truth["ave"]["videos"][ave_clip]["segments"][3]
    heard = ", ".join(segment["audible"]) or "nothing"
    assert seconds[3]["answer"].endswith(f"Heard: {heard}.") and "from AVE" in seconds[3]["instruction"]
    s4_seconds = [r for r in by_task["caption_second"] if r["id"].startswith(f"caption_second/avsbench/{sample.id}/")]
    assert len(s4_seconds) == 5 and s4_seconds[0]["media"]["frames"][0].endswith("frames/0.jpg")


def test_a_second_is_its_frame_and_its_second_of_audio() -> None:
    from avbench.adapters.crab.training.data import second_of
    from avbench.media import DecodedMedia

    frames = np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), dtype=np.uint8)
    audio = np.arange(25_000, dtype=np.float32)
    got = second_of(DecodedMedia(frames, audio), None, 1)
    assert got.frames.shape == (1, 2, 2, 3) and int(got.frames[0, 0, 0, 0]) == 1
    np.testing.assert_array_equal(got.audio, audio[16_000:25_000].tolist() + [0.0] * 7_000)  # padded past the end
    # 5 listed images decoded as 10 frames (each repeated): second 3 is listed image 3, decoded frame 6
    assert int(second_of(DecodedMedia(frames, audio), 5, 3).frames[0, 0, 0, 0]) == 6
    with pytest.raises(DataError, match="second 5 of a clip of 5 frames"):
        second_of(DecodedMedia(frames, audio), 5, 5)


def test_bad_instruction_lines_name_the_file_and_line(tmp_path: Path) -> None:
    good = {"id": "a", "task": "ave", "media": {"video": "v.mp4"}, "instruction": "x", "answer": "y"}
    path = tmp_path / "bad.jsonl"
    for line, message in (
        ("{not json", "invalid JSON"),
        (json.dumps({**good, "answer": ""}), "'answer' must be a non-empty string"),
        (json.dumps({k: v for k, v in good.items() if k != "media"}), "record lacks media"),
        (json.dumps({**good, "masks": {"kind": "binary", "frames": [0, 1], "files": ["a.png"]}}), "2 frames for 1 files"),
    ):
        path.write_text(json.dumps(good) + "\n" + line + "\n")
        with pytest.raises(DataError, match=message) as info:
            read_instructions(path, tmp_path)
        assert info.value.line == 2 and Path(info.value.path) == path
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(DataError, match="duplicate id 'a' \\(first on line 1\\)"):
        read_instructions(path, tmp_path)


# ---- recipe, order, schedule -------------------------------------------------------------------------------
def test_recipe_errors_name_the_file_and_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("name: x\noutput_dir: o\nstages:\n  - name: a\n    steps: 2\n    tasks: [ave]\n    train: [wings]\n")
    with pytest.raises(DataError, match=r"stages\[0\] \(a\): train must list some of") as info:
        load_config(path)
    assert Path(info.value.path) == path
    path.write_text("name: x\nstages: [\n")
    with pytest.raises(DataError, match="invalid YAML"):
        load_config(path)
    with pytest.raises(DataError, match="unknown keys \\['lr_max'\\]"):
        parse_config({**_recipe(tmp_path), "stages": [{**_recipe(tmp_path)["stages"][0], "lr_max": 1}]}, path)
    for repeat, problem in (({"ave": 0}, "repeat\\['ave'\\] must be a whole number >= 1"),
                            ({"s4": 2}, "repeat\\['s4'\\] must be a whole number >= 1 for one of the stage's tasks"),
                            ([2], "repeat must map task names")):
        stage = {"name": "a", "steps": 1, "tasks": ["ave"], "train": ["llm"], "repeat": repeat}
        with pytest.raises(DataError, match=rf"stages\[0\] \(a\): {problem}"):
            parse_config({"name": "x", "output_dir": "o", "stages": [stage]}, path)
    for name in ("crab-tiny", "crab-tiny-polish", "crab-tiny-spans", "crab-tiny-drills", "crab-tiny-seconds"):  # every shipped recipe parses
        shipped = load_config(Path(__file__).parents[2] / "configs" / f"{name}.yaml")
        assert shipped.data.synthav_size == "medium" and shipped.name == "crab-tiny"


def test_data_order_is_a_stream_of_seeded_permutations() -> None:
    first_epoch = [i for k in range(5) for i in micro_batch(10, 2, seed=3, stage_index=1, index=k)]
    assert sorted(first_epoch) == list(range(10))  # every record once per epoch
    assert first_epoch == np.random.default_rng([3, 1, 0]).permutation(10).tolist()
    crossing = micro_batch(10, 4, seed=3, stage_index=1, index=2)  # positions 8..11: end of epoch 0, start of 1
    assert crossing == first_epoch[8:] + np.random.default_rng([3, 1, 1]).permutation(10).tolist()[:2]
    assert micro_batch(10, 2, seed=4, stage_index=1, index=0) != first_epoch[:2] or micro_batch(10, 2, 5, 1, 0) != first_epoch[:2]


def test_a_stage_lists_each_record_its_task_repeat_times_in_data_order() -> None:
    from avbench.adapters.crab.training.recipe import StageConfig

    records = [SimpleNamespace(task=t, id=i) for i, t in enumerate(["ave", "arig", "s4", "ave"])]
    stage = StageConfig("s", steps=1, tasks=["ave", "arig"], train=["llm"], repeat={"arig": 3})
    assert [r.id for r in stage_records(records, stage)] == [0, 1, 1, 1, 3]
    with pytest.raises(AVBenchError, match="no records of tasks \\['avss'\\]"):
        stage_records(records, StageConfig("s", steps=1, tasks=["avss"], train=["llm"]))


def test_learning_rate_warms_up_linearly_then_decays_by_cosine_to_the_floor() -> None:
    from avbench.adapters.crab.training.recipe import StageConfig

    stage = StageConfig("s", steps=12, tasks=["ave"], train=["llm"], warmup_steps=2, min_lr_ratio=0.1)
    assert [lr_factor(s, stage) for s in (0, 1)] == [0.5, 1.0]
    assert lr_factor(2, stage) == pytest.approx(1.0)
    assert lr_factor(7, stage) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(12, stage) == pytest.approx(0.1)
    assert smoothed([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]


def test_every_parameter_belongs_to_one_group_and_groups_switch_training(tiny_checkpoint: Path) -> None:
    model = load_checkpoint(tiny_checkpoint).model
    groups = {group_of(name) for name, _ in model.named_parameters()}
    assert groups == set(PARAMETER_GROUPS)
    trainable = set_trainable(model, ["lora", "seg"])
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names and all(".lora_" in n or n.startswith("seg.") for n in names)
    assert sum(p.numel() for p in trainable) == sum(p.numel() for n, p in model.named_parameters() if n in names)
    set_trainable(model, ["llm"])  # peft froze the LLM's own weights; the recipe can train them
    assert model.causal_lm.lm_head.weight.requires_grad


# ---- the trainer -----------------------------------------------------------------------------------------
def _trainer(instructions: Path, root: Path, out: Path, steps: int, encoder_steps: int = 0, **stage: object) -> Trainer:
    config = parse_config(_recipe(out, steps, encoder_steps, **stage), out / "recipe.yaml")
    return Trainer(config, read_instructions(instructions, root), log=lambda m: None)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(folder).model.state_dict()


def test_training_lowers_the_loss_on_a_fixed_batch(synthav_tiny: Path, instructions: Path, tmp_path: Path) -> None:
    # one stage on 2 records of one task, so every step sees the same batch: the loss must fall
    trainer = _trainer(instructions, synthav_tiny, tmp_path / "run", steps=8, tasks=["music_avqa"], lr=3e-3)
    trainer.records = [r for r in trainer.records if r.task == "music_avqa"][:2]
    trainer.train(resume=False)
    losses = [e["loss"] for e in read_log(tmp_path / "run" / LOG_FILE)]
    assert len(losses) == 8 and losses[-1] < 0.7 * losses[0]
    assert (tmp_path / "run" / "loss_curve.png").stat().st_size > 1000


@pytest.mark.parametrize("stop_after", [1, 3])  # inside the encoders stage (its heads are saved too), inside the next
def test_resumed_training_equals_an_uninterrupted_run(synthav_tiny: Path, instructions: Path, tmp_path: Path, stop_after: int) -> None:
    # the second stage accumulates 2 micro-batches of 1 per step
    whole = _trainer(instructions, synthav_tiny, tmp_path / "whole", steps=2, encoder_steps=2,
                     batch_size=1, grad_accum=2).train(resume=False)
    interrupted = _trainer(instructions, synthav_tiny, tmp_path / "parts", steps=2, encoder_steps=2, batch_size=1, grad_accum=2)
    stopped = interrupted.train(resume=False, stop_after=stop_after)
    assert stopped.name == f"step-{stop_after:07d}" and latest_checkpoint(tmp_path / "parts") == stopped
    assert (stopped / "probe.pt").is_file() == (stop_after == 1)
    # a fresh process (new Trainer) picks up where the first stopped, with the same data order and dropout draws
    resumed = _trainer(instructions, synthav_tiny, tmp_path / "parts", steps=2, encoder_steps=2, batch_size=1, grad_accum=2)
    final = resumed.train(resume=True)
    assert resumed.position.global_step == 4
    a, b = _weights(whole), _weights(final)
    assert all(torch.equal(a[k], b[k]) for k in a)
    logs = [read_log(tmp_path / name / LOG_FILE) for name in ("parts", "whole")]
    assert [e["step"] for e in logs[0]] == [1, 2, 3, 4] and [e["stage"] for e in logs[0]] == ["encoders"] * 2 + ["all"] * 2
    assert [e["loss"] for e in logs[0]] == [e["loss"] for e in logs[1]]
    # the code of each start is on record for the weights' provenance
    starts = json.loads((tmp_path / "parts" / "source.json").read_text())["starts"]
    assert [s["global_step"] for s in starts] == [0, stop_after]
    assert {s["git_revision"] for s in starts} == {git_revision()}
    assert len(json.loads((tmp_path / "whole" / "source.json").read_text())["starts"]) == 1


def test_the_encoder_objective_weighs_rare_labels_and_learns_them(synthav_tiny: Path, instructions: Path, tmp_path: Path) -> None:
    from avbench.adapters.crab.training.trainer import probe_for

    trainer = _trainer(instructions, synthav_tiny, tmp_path / "run", steps=1, encoder_steps=1)
    records = [r for r in trainer.records if r.task == "caption_second"]
    probe = probe_for(trainer.model, records, seed=0, stage_index=0)
    seen = probe.targets(records, "seen")
    positives = seen.sum(0)
    expected = ((len(records) - positives) / positives.clamp(min=1)).clamp(1, 100)
    torch.testing.assert_close(probe.seen_weight, expected)
    first = next(r for r in records if r.labels["seen"])
    assert all(seen[records.index(first), probe.seen_index[name]] == 1 for name in first.labels["seen"])
    # 12 steps of the encoder objective on 8 records: the loss falls
    trainer = _trainer(instructions, synthav_tiny, tmp_path / "fit", steps=1, encoder_steps=12)
    trainer.records = records[:8] + [r for r in trainer.records if r.task == "ave"][:1]
    trainer.config.stages[0].batch_size = 8
    trainer.train(resume=False, stop_after=12)
    losses = [e["loss"] for e in read_log(tmp_path / "fit" / LOG_FILE)]
    assert losses[-1] < 0.8 * losses[0]


def test_a_saved_checkpoint_reloads_to_identical_outputs(synthav_tiny: Path, instructions: Path, tmp_path: Path) -> None:
    trainer = _trainer(instructions, synthav_tiny, tmp_path / "run", steps=1)
    final = trainer.train(resume=False)
    reloaded = load_checkpoint(final).model
    record = next(r for r in trainer.records if r.task == "s4")
    example = trainer.builder.example(record)
    with torch.no_grad():
        outs = [m(m.prepare_batch([example.inputs]), mask_frames=[[0]]) for m in (trainer.model.eval(), reloaded)]
    assert torch.equal(outs[0].logits, outs[1].logits)
    assert torch.equal(outs[0].mask_logits[0], outs[1].mask_logits[0])


def test_a_recipe_can_turn_on_the_decoders_prompt_conditioning(synthav_tiny: Path, instructions: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    recipe = {**_recipe(out, steps=2, tasks=["avss", "ref_avs"]), "seg": {"prompt_conditioning": True}}
    trainer = Trainer(parse_config(recipe, out / "recipe.yaml"), read_instructions(instructions, synthav_tiny), log=lambda m: None)
    final = trainer.train(resume=False)
    reloaded = load_checkpoint(final)
    assert reloaded.config.seg.prompt_conditioning  # the checkpoint's config carries it
    moved = [n for n, p in reloaded.model.named_parameters() if "prompt_conditioning" in n and torch.count_nonzero(p)]
    assert any("film" in n for n in moved) and any("class_head" in n for n in moved)  # trained from zero
    record = next(r for r in trainer.records if r.task == "avss")
    example = trainer.builder.example(record)
    with torch.no_grad():
        outs = [m(m.prepare_batch([example.inputs]), mask_frames=[[0]], semantic=[True]) for m in (trainer.model.eval(), reloaded.model)]
    assert outs[0].mask_logits[0].shape[1] == 71 and torch.equal(outs[0].mask_logits[0], outs[1].mask_logits[0])
    # an empty `seg` leaves the digest as it was before the key existed (older runs resume); a change is a new recipe
    digests = [config_digest(parse_config(r, out / "r.yaml")) for r in (_recipe(out), {**_recipe(out), "seg": {}}, recipe)]
    assert digests[0] == digests[1] != digests[2]
    with pytest.raises(DataError, match=r"seg: unknown keys \['prompt_conditionin'\]"):
        parse_config({**recipe, "seg": {"prompt_conditionin": True}}, out / "r.yaml")
    for value, kind in (("true", "bool"), (1, "bool")):
        with pytest.raises(DataError, match=f"seg.prompt_conditioning must be of type {kind}, got {value!r}"):
            parse_config({**recipe, "seg": {"prompt_conditioning": value}}, out / "r.yaml")
    with pytest.raises(DataError, match="seg.avs_query_num must be of type int, got True"):
        parse_config({**recipe, "seg": {"avs_query_num": True}}, out / "r.yaml")
    with pytest.raises(DataError, match="a checkpoint \\(init_checkpoint\\) keeps its own"):
        parse_config({**recipe, "preset": None, "init_checkpoint": str(final)}, out / "r.yaml")


def test_an_interpolating_stage_keeps_that_fraction_of_its_change(synthav_tiny: Path, instructions: Path, tmp_path: Path) -> None:
    # the same two stages with the second kept whole and kept half: the data order and the dropout draws are
    # the same, so the half run's weights are exactly halfway between the second stage's start and the whole run's
    whole = _trainer(instructions, synthav_tiny, tmp_path / "whole", steps=2, encoder_steps=1).train(resume=False)
    half = _trainer(instructions, synthav_tiny, tmp_path / "half", steps=2, encoder_steps=1, interpolate=0.5).train(resume=False)
    start, end, kept = (_weights(f) for f in (tmp_path / "whole" / "checkpoints" / "step-0000001", whole, half))
    changed = [k for k in start if start[k].is_floating_point() and not torch.equal(start[k], end[k])]
    assert len(changed) > 100
    assert all(torch.equal(kept[k], torch.lerp(start[k], end[k], 0.5)) for k in start)  # tied tensors too
    assert not list((tmp_path / "half").glob("stage-*-start.safetensors"))  # the start weights go once the stage ends
    # killed inside the stage, a new process reads the start weights back and ends where the whole run did
    parts = _trainer(instructions, synthav_tiny, tmp_path / "parts", steps=2, encoder_steps=1, interpolate=0.5)
    parts.train(resume=False, stop_after=2)
    assert (tmp_path / "parts" / "stage-2-start.safetensors").is_file()
    resumed = _trainer(instructions, synthav_tiny, tmp_path / "parts", steps=2, encoder_steps=1, interpolate=0.5).train(resume=True)
    again = _weights(resumed)
    assert all(torch.equal(kept[k], again[k]) for k in kept)
    # a kept fraction of 1 is the recipe as it was before the key existed; another fraction is another recipe
    digests = [config_digest(parse_config(_recipe(tmp_path, **extra), tmp_path / "r.yaml"))
               for extra in ({}, {"interpolate": 1.0}, {"interpolate": 0.5})]
    assert digests[0] == digests[1] != digests[2]
    for bad in (0, 1.5, True, "half"):
        with pytest.raises(DataError, match=r"stages\[0\] \(all\): interpolate must be a number in \(0, 1\]"):
            parse_config(_recipe(tmp_path, interpolate=bad), tmp_path / "r.yaml")


def test_a_missing_init_checkpoint_says_to_train_it_first(instructions: Path, synthav_tiny: Path, tmp_path: Path) -> None:
    from avbench.adapters.crab.training.plan import recipe_tokenizer

    recipe = {**_recipe(tmp_path / "run"), "preset": None, "init_checkpoint": str(tmp_path / "base" / "final")}
    config = parse_config(recipe, tmp_path / "r.yaml")
    for start in (lambda: Trainer(config, read_instructions(instructions, synthav_tiny)), lambda: recipe_tokenizer(config)):
        with pytest.raises(AVBenchError, match=r"init_checkpoint .*base/final does not exist: .* train that one first"):
            start()


def test_resume_refuses_a_changed_recipe(synthav_tiny: Path, instructions: Path, tmp_path: Path) -> None:
    _trainer(instructions, synthav_tiny, tmp_path / "run", steps=2).train(resume=False, stop_after=1)
    changed = _trainer(instructions, synthav_tiny, tmp_path / "run", steps=2, lr=1e-4)
    with pytest.raises(Exception, match="another training config"):
        changed.train(resume=True)


def test_the_train_and_instructions_commands(synthav_tiny: Path, tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from avbench.cli import app

    runner = CliRunner()
    out = tmp_path / "train.jsonl"
    result = runner.invoke(app, ["data", "instructions", "--synthav-size", "tiny", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == int(result.output.split()[0])
    recipe = _recipe(tmp_path / "run", steps=2)
    recipe["stages"][0]["tasks"] = ["ave"]
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    result = runner.invoke(app, ["train", "--config", str(tmp_path / "r.yaml"), "--stop-after", "1"])
    assert result.exit_code == 0 and "stopped after step 1" in result.output, result.output
    result = runner.invoke(app, ["train", "--config", str(tmp_path / "r.yaml")])
    assert result.exit_code == 0 and "model in" in result.output, result.output
    assert [e["step"] for e in read_log(tmp_path / "run" / LOG_FILE)] == [1, 2]
    assert load_checkpoint(tmp_path / "run" / "final").config.name == "crab-tiny"
    (tmp_path / "bad.yaml").write_text("name: x\n")
    result = runner.invoke(app, ["train", "--config", str(tmp_path / "bad.yaml")])
    assert result.exit_code == 2 and "bad.yaml" in result.output and "'stages' must be a non-empty list" in result.output


def test_masks_follow_answer_is_a_decoding_choice_that_leaves_training_alone(
        synthav_tiny: Path, instructions: Path, tmp_path: Path) -> None:
    """The key changes what the written checkpoint's config says, not one weight: the bundled crab-tiny sets it
    and still equals the weights of the same recipe without it."""
    finals = []
    for name, seg in (("plain", {}), ("follow", {"masks_follow_answer": True})):
        out = tmp_path / name
        recipe = {**_recipe(out, steps=2, tasks=["avss", "ref_avs"]), "seg": seg}
        finals.append(Trainer(parse_config(recipe, out / "recipe.yaml"), read_instructions(instructions, synthav_tiny),
                              log=lambda m: None).train(resume=False))
    plain, follow = (load_checkpoint(f) for f in finals)
    assert follow.config.seg.masks_follow_answer and not plain.config.seg.masks_follow_answer
    assert [json.loads(line)["loss"] for line in (finals[0].parent / "train_log.jsonl").read_text().splitlines()] == \
        [json.loads(line)["loss"] for line in (finals[1].parent / "train_log.jsonl").read_text().splitlines()]
    for (key, a), b in zip(plain.model.state_dict().items(), follow.model.state_dict().values()):
        assert torch.equal(a, b), key
