"""Text-only MUSIC-AVQA and AVE drills: the records (fresh scenes, true evidence given, the answer), their tokens
(supervised only after the given evidence), and training on them next to media records."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from avbench.adapters.crab.prompts import IGNORE_INDEX
from avbench.adapters.crab.training.data import ExampleBuilder, MediaCache, parse_record, read_instructions
from avbench.adapters.crab.training.recipe import parse_config
from avbench.adapters.crab.training.trainer import LOG_FILE, Trainer, config_digest, read_log
from avbench.adapters.crab.adapter import CrabAdapter
from avbench.adapters.crab.checkpoint import load_checkpoint
from avbench.errors import AVBenchError, DataError
from avbench.registry import get_task
from avbench.synthav.instruct import AVE_DRILL, DRILL, ave_drill_records, drill_records, export_instructions
from avbench.types import ModelOutput, Sample

HEARD_COUNT = "How many musical instruments were heard throughout the video?"
NUMBERS = ["zero", "one", "two", "three", "four", "five"]


@pytest.fixture(scope="module")
def drills() -> list[dict]:
    return list(drill_records(seed=0, scenes=60))


def test_a_drill_is_a_question_its_true_evidence_and_the_answer(drills: list[dict]) -> None:
    task = get_task("music_avqa")
    assert len({d["id"] for d in drills}) == len(drills) > 60 * 3 - 1  # three or four questions a scene
    for record in drills:
        assert record["task"] == DRILL and record["media"] == {}
        assert "<video" not in record["instruction"] and "<audio" not in record["instruction"]
        assert record["instruction"].startswith("Please answer this question: ")
        assert record["answer"] == f"{record['given']} So the answer is <answer>{_answer(record)}</answer>."
        # the task's own parser reads the answer back
        question = record["instruction"].split(": ", 1)[1].split("\n")[0]
        sample = Sample(id="q", task="music_avqa", split="train", media={}, inputs={"question": question},
                        target={"answer": _answer(record)})
        assert task.parse(ModelOutput(record["answer"]), sample)["answer"] == _answer(record)
    # answers follow the given evidence: the heard count is the number of sounds listed after "Heard:"
    counted = [d for d in drills if HEARD_COUNT in d["instruction"]]
    assert counted
    for record in counted:
        heard = record["given"].split("Heard: ")[1]
        assert NUMBERS[0 if heard == "no instrument." else heard.count(" beats a second")] == _answer(record)
    # its own streams: another seed gives other scenes, the same seed the same ones
    assert [d["given"] for d in drill_records(seed=1, scenes=5)] != [d["given"] for d in drills[:len(list(drill_records(1, 5)))]]
    assert list(drill_records(seed=0, scenes=60)) == drills


def _spans(text: str) -> dict[str, set[int]]:
    """"Bark 0-4, 6-7; Cat 2-3." -> {"Bark": {0, 1, 2, 3, 6}, "Cat": {2}} (a class name may hold a comma)."""
    out: dict[str, set[int]] = {}
    for part in text.rstrip(".").split("; "):
        if part == "nothing":
            continue
        name, spans = re.match(r"(.+?) (\d+-\d+(?:, \d+-\d+)*)$", part).groups()
        out[name] = {s for span in spans.split(", ") for s in range(*map(int, span.split("-")))}
    return out


def test_an_ave_drill_answers_with_the_overlap_of_its_given_seen_and_heard_spans() -> None:
    task = get_task("ave")
    records = list(ave_drill_records(seed=0, scenes=80))
    assert [r["id"] for r in records] == [f"{AVE_DRILL}/{k}" for k in range(80)]
    for record in records:
        assert record["task"] == AVE_DRILL and record["media"] == {} and "<video" not in record["instruction"]
        assert record["answer"].startswith(record["given"] + " Both seen and heard: ")
        seen, heard = (_spans(part) for part in record["given"][len("Seen: "):].split(" Heard: "))
        both = {name: sorted(seen[name] & heard.get(name, set())) for name in seen}
        [(event, seconds)] = [(name, s) for name, s in both.items() if s]  # one class, one unbroken run
        assert seconds == list(range(seconds[0], seconds[-1] + 1))
        sample = Sample(id="v", task="ave", split="train", media={}, target={"event": event, "start": seconds[0],
                                                                             "end": seconds[-1] + 1})
        assert task.parse(ModelOutput(record["answer"]), sample) == sample.target
    assert list(ave_drill_records(seed=0, scenes=80)) == records
    assert [r["given"] for r in ave_drill_records(seed=1, scenes=5)] != [r["given"] for r in records[:5]]


def _answer(record: dict) -> str:
    return record["answer"].split("<answer>")[1].split("</answer>")[0]


def test_a_drill_is_supervised_only_after_its_given_evidence(drills: list[dict], tiny_checkpoint: Path, tmp_path: Path) -> None:
    loaded = load_checkpoint(tiny_checkpoint)
    builder = ExampleBuilder(loaded.tokenizer, loaded.model.config, MediaCache(CrabAdapter.media_spec))
    record = parse_record(drills[0], tmp_path, tmp_path / "d.jsonl", 1)
    ids, labels = builder.tokens(record)
    supervised = [t for t in labels if t != IGNORE_INDEX]
    assert labels[:len(labels) - len(supervised)] == [IGNORE_INDEX] * (len(labels) - len(supervised))
    assert ids[len(ids) - len(supervised):] == supervised
    text = loaded.tokenizer.decode(supervised, skip_special_tokens=True)
    assert text.strip() == f"So the answer is <answer>{_answer(drills[0])}</answer>."
    # without `given` the whole answer is supervised
    whole = parse_record({**drills[0], "id": "plain", "given": ""}, tmp_path, tmp_path / "d.jsonl", 1)
    assert len([t for t in builder.tokens(whole)[1] if t != IGNORE_INDEX]) > len(supervised) + 20
    example = builder.example(record)
    assert example.inputs.pixels is None and example.inputs.segments is None and example.mask_targets is None


def test_bad_text_only_records_name_the_file_and_line(drills: list[dict], tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    bad = [
        ({**drills[0], "given": "Heard: nothing."}, "'given' must be a string the answer starts with"),
        ({**drills[0], "second": 2}, "text-only record"),
        ({**drills[0], "media": []}, "'media' must be an object"),
    ]
    for record, message in bad:
        path.write_text(json.dumps(drills[1]) + "\n" + json.dumps(record) + "\n")
        with pytest.raises(DataError, match=message) as caught:
            read_instructions(path, tmp_path)
        assert str(path) in str(caught.value) and ":2" in str(caught.value)


def _recipe(out: Path, drills: int = 0, **data: object) -> dict:
    return {"name": "t", "output_dir": str(out), "threads": 1, "log_every": 100, "checkpoint_every": 100,
            "data": {"synthav_size": "tiny", "drills": drills, **data}, "mask_loss_size": 112,
            "stages": [{"name": "drill", "steps": 8, "tasks": [DRILL], "train": ["llm"], "lr": 3e-3,
                        "warmup_steps": 1, "batch_size": 2},
                       {"name": "mixed", "steps": 2, "tasks": ["music_avqa", DRILL], "train": ["llm", "lora", "connectors"],
                        "batch_size": 4}]}


def test_recipes_export_drills_and_train_on_them_beside_media_records(synthav_tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    counts = export_instructions(synthav_tiny, out, drills=3, drill_seed=0)
    assert counts[DRILL] == len(list(drill_records(0, 3)))
    records = read_instructions(out, synthav_tiny)
    config = parse_config(_recipe(tmp_path / "run", drills=3), tmp_path / "r.yaml")
    trainer = Trainer(config, records, log=lambda m: None)
    drill_only = [r for r in trainer.records if r.task == DRILL][:2]
    trainer.records = drill_only + [r for r in trainer.records if r.task == "music_avqa"][:2]
    trainer.train(resume=False)
    log = read_log(tmp_path / "run" / LOG_FILE)
    drilled = [e["loss"] for e in log if e["stage"] == "drill"]
    assert len(drilled) == 8 and drilled[-1] < 0.7 * drilled[0]  # the same two drills every step: the loss falls
    assert [e["stage"] for e in log[8:]] == ["mixed", "mixed"] and all(e["loss"] > 0 for e in log[8:])
    # a recipe without drills keeps the digest it had before the key existed (old runs still resume)
    plain = parse_config(_recipe(tmp_path / "run"), tmp_path / "r.yaml")
    assert config_digest(plain) != config_digest(config)
    with pytest.raises(DataError, match="drills must be a whole number >= 0, with synthav_size"):
        parse_config(_recipe(tmp_path / "run", drills=-1), tmp_path / "r.yaml")
    with pytest.raises(DataError, match="ave_drills must be a whole number >= 0, with synthav_size"):
        parse_config(_recipe(tmp_path / "run", drills=3, ave_drills=True), tmp_path / "r.yaml")
    assert config_digest(parse_config(_recipe(tmp_path / "run", drills=3, ave_drills=0), tmp_path / "r.yaml")) == config_digest(config)
    assert config_digest(parse_config(_recipe(tmp_path / "run", drills=3, ave_drills=1), tmp_path / "r.yaml")) != config_digest(config)
    with pytest.raises(DataError, match="with synthav_size"):
        parse_config(_recipe(tmp_path / "run", drills=2, synthav_size=None, instructions=str(out),
                             data_root=str(synthav_tiny)), tmp_path / "r.yaml")


def test_text_only_records_run_as_their_own_group_with_the_same_loss(synthav_tiny: Path, tiny_checkpoint: Path,
                                                                       tmp_path: Path) -> None:
    import torch

    from avbench.adapters.crab.training.trainer import TEXT_GROUP_TOKENS, TrainingModule

    out = tmp_path / "train.jsonl"
    export_instructions(synthav_tiny, out, tasks=["music_avqa", "s4"], captions=False, drills=1, ave_drills=1)
    records = read_instructions(out, synthav_tiny)
    chosen = [next(r for r in records if r.task == "s4"), next(r for r in records if r.task == DRILL),
              next(r for r in records if r.task == "music_avqa"), next(r for r in records if r.task == AVE_DRILL)]
    model = load_checkpoint(tiny_checkpoint).model
    builder = ExampleBuilder(load_checkpoint(tiny_checkpoint).tokenizer, model.config, MediaCache(CrabAdapter.media_spec), 112)
    examples = [builder.example(r) for r in chosen]
    with torch.no_grad():
        grouped = TrainingModule(model, 112)(examples)
        prepared = model.prepare_batch([e.inputs for e in examples])
        whole = model(prepared, mask_frames=[e.mask_frames for e in examples], mask_targets=[e.mask_targets for e in examples],
                      semantic=[e.semantic for e in examples], mask_groups=[e.mask_frames for e in examples], mask_size=112)
    # the two drills differ in length enough to run as two text-only groups
    bins = {len(p.embeds) // TEXT_GROUP_TOKENS for p, r in zip(prepared, chosen) if r.task in (DRILL, AVE_DRILL)}
    assert len(bins) == 2
    torch.testing.assert_close(grouped.lm_loss, whole.lm_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grouped.mask_loss, whole.mask_loss, rtol=1e-5, atol=1e-6)
    assert grouped.mask_logits[1] is None and grouped.mask_logits[2] is None and grouped.mask_logits[3] is None
    torch.testing.assert_close(grouped.mask_logits[0], whole.mask_logits[0], rtol=1e-4, atol=1e-5)


def test_the_drills_recipe_is_crab_tiny_with_a_frozen_encoder_connector_stage_and_drills_mixed_in() -> None:
    import dataclasses

    from avbench.adapters.crab.training.recipe import load_config

    configs = Path(__file__).parents[2] / "configs"
    base, drilled = load_config(configs / "crab-tiny-spans.yaml"), load_config(configs / "crab-tiny-drills.yaml")
    assert drilled.data.drills == 2000 and base.data.drills == 0
    assert [s.name for s in drilled.stages] == [s.name for s in base.stages]
    changed = {s.name: {f.name for f in dataclasses.fields(s) if getattr(s, f.name) != getattr(b, f.name)}
               for s, b in zip(drilled.stages, base.stages)}
    assert changed == {"encoders": set(), "pretrain": {"steps", "train"}, "instruct": {"tasks", "repeat", "batch_size"},
                       "segmentation": set()}
    pretrain, instruct = drilled.stages[1], drilled.stages[2]
    assert "vision" not in pretrain.train and "audio" not in pretrain.train
    assert instruct.tasks == base.stages[2].tasks + [DRILL]


def test_evidence_written_per_second_gives_one_line_a_second_and_the_same_answers(synthav_tiny: Path, tmp_path: Path) -> None:
    from avbench.synthav.instruct import describe_seconds

    segments = [{"visible": [{"class": "Cat"}, {"class": "Bark"}], "audible": ["Bark"]}, {"visible": [], "audible": []}]
    assert describe_seconds(segments) == "Second 0: seen Bark, Cat; heard Bark. Second 1: seen nothing; heard nothing."
    for record in ave_drill_records(seed=0, scenes=40, evidence="seconds"):
        lines = re.findall(r"Second (\d): seen (.*?); heard (.*?)\.", record["given"])
        assert [int(k) for k, _, _ in lines] == list(range(10))
        # a class name may hold ", " ("Violin, fiddle"): its parts are seen and heard together or not at all
        both = sorted({int(k) for k, seen, heard in lines for name in seen.split(", ") if name != "nothing" and name in heard.split(", ")})
        event = record["answer"].split("<event>")[1].split("</event>")[0]
        start, end = map(int, record["answer"].split("<range>")[1].split("</range>")[0].split(","))
        assert both == list(range(start, end)) and event in lines[start][1]
    spans, seconds = tmp_path / "spans.jsonl", tmp_path / "seconds.jsonl"
    export_instructions(synthav_tiny, spans, tasks=["ave", "music_avqa"])
    export_instructions(synthav_tiny, seconds, tasks=["ave", "music_avqa"], evidence="seconds")
    a, b = ([json.loads(line) for line in path.read_text().splitlines()] for path in (spans, seconds))
    assert [r["id"] for r in a] == [r["id"] for r in b]
    for old, new in zip(a, b):
        if old["task"] in ("ave", "caption"):  # the evidence changes form, the tags do not
            assert new["answer"].startswith("Second 0: seen ") and old["answer"].startswith("Seen: ")
            assert new["answer"].split("Both seen and heard")[1:] == old["answer"].split("Both seen and heard")[1:]
        else:
            assert new == old
    with pytest.raises(AVBenchError, match="evidence must be one of"):
        export_instructions(synthav_tiny, tmp_path / "x.jsonl", evidence="words")
    # the CLI says so in one line, without a traceback
    from typer.testing import CliRunner

    from avbench.cli import app

    result = CliRunner().invoke(app, ["data", "instructions", "--synthav-size", "tiny", "--evidence", "words",
                                      "--out", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "evidence must be one of ['seconds', 'spans'], got 'words'" in result.output
    config = parse_config(_recipe(tmp_path / "run", drills=3), tmp_path / "r.yaml")
    assert config_digest(parse_config(_recipe(tmp_path / "run", drills=3, evidence="spans"), tmp_path / "r.yaml")) == config_digest(config)
    assert config_digest(parse_config(_recipe(tmp_path / "run", drills=3, evidence="seconds"), tmp_path / "r.yaml")) != config_digest(config)
    with pytest.raises(DataError, match="evidence must be spans or seconds"):
        parse_config(_recipe(tmp_path / "run", evidence="words"), tmp_path / "r.yaml")


def test_the_seconds_recipe_is_the_drills_recipe_with_ave_drills_and_evidence_per_second() -> None:
    import dataclasses

    from avbench.adapters.crab.training.recipe import load_config

    configs = Path(__file__).parents[2] / "configs"
    drilled, seconds = load_config(configs / "crab-tiny-drills.yaml"), load_config(configs / "crab-tiny-seconds.yaml")
    assert (seconds.data.drills, seconds.data.ave_drills, seconds.data.evidence) == (2000, 2000, "seconds")
    assert (drilled.data.ave_drills, drilled.data.evidence) == (0, "spans")
    changed = {s.name: {f.name for f in dataclasses.fields(s) if getattr(s, f.name) != getattr(b, f.name)}
               for s, b in zip(seconds.stages, drilled.stages)}
    assert changed == {"encoders": set(), "pretrain": set(), "instruct": {"tasks", "repeat", "batch_size"}, "segmentation": set()}
    instruct = seconds.stages[2]
    assert instruct.tasks == drilled.stages[2].tasks + [AVE_DRILL] and instruct.repeat == {**drilled.stages[2].repeat, AVE_DRILL: 2}


def test_the_bundled_recipe_polishes_the_seconds_model_then_replays_its_segmentation_stage() -> None:
    from avbench.adapters.crab.training.recipe import load_config

    configs = Path(__file__).parents[2] / "configs"
    seconds, polish, bundled = (load_config(configs / f"{name}.yaml") for name in ("crab-tiny-seconds", "crab-tiny-polish", "crab-tiny"))
    assert polish.init_checkpoint == f"{seconds.output_dir}/final" and bundled.init_checkpoint == f"{polish.output_dir}/final"
    assert polish.preset is None and bundled.preset is None and bundled.output_dir == "runs/crab-tiny"
    assert polish.data == seconds.data == bundled.data
    (stage,), instruct = polish.stages, seconds.stages[2]
    # the base mixture with ARIG, AVVP and Ref-AVS drawn more often, at a tenth of the base learning rate
    assert stage.tasks == instruct.tasks and stage.interpolate == 0.5 and stage.lr == instruct.lr / 10
    raised = {t for t in stage.tasks if stage.repeat.get(t, 1) != instruct.repeat.get(t, 1)}
    assert raised == {"arig", "avvp", "ref_avs"} and all(stage.repeat[t] > instruct.repeat.get(t, 1) for t in raised)
    assert "seg" not in stage.train and bundled.stages == [seconds.stages[3]]
