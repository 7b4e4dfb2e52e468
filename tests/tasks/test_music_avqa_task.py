"""MUSIC-AVQA task: both real releases, question filling, answer parsing, oracle/random/prior end to end."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from avbench.scoring import score_outputs
from avbench.errors import DataError, ParseError
from avbench.tasks.music_avqa import MusicAVQATask, fill_question
from avbench.types import ModelOutput

TASK = MusicAVQATask()
SUBTYPES = ["audio_counting", "audio_comparative", "visual_counting", "visual_location", "audio_visual_existential",
            "audio_visual_counting", "audio_visual_location", "audio_visual_comparative", "audio_visual_temporal"]


def release_root(avdata: Path, tmp_path_factory, release: str) -> Path:
    root = tmp_path_factory.mktemp(f"avqa-{release}")
    (root / "music_avqa").symlink_to(avdata / "music_avqa" / release)
    return root


@pytest.fixture(scope="module")
def updated_root(avdata, tmp_path_factory):
    return release_root(avdata, tmp_path_factory, "json_update")


@pytest.fixture(scope="module")
def test_split(updated_root):
    return TASK.load(updated_root, "test")


def evaluate(samples, outputs):
    return score_outputs(TASK, samples, outputs).metrics


# ---- loading -------------------------------------------------------------------------------------
def test_updated_release_counts(updated_root, test_split):
    assert len(test_split) == 9129 and len({s.id for s in test_split}) == 9129
    assert len(TASK.load(updated_root, "val")) == 4568
    counts = Counter(s.meta["type"] for s in test_split)
    assert counts == {"Audio-Visual/Counting": 1265, "Visual/Location": 1225, "Visual/Counting": 1197,
                      "Audio-Visual/Comparative": 1101, "Audio/Counting": 1017, "Audio-Visual/Existential": 988,
                      "Audio-Visual/Location": 920, "Audio-Visual/Temporal": 822, "Audio/Comparative": 594}
    # question_deleted is 0 throughout; the official code ignores it and so keeps every question
    assert {s.meta["question_deleted"] for s in test_split} == {0}


def test_original_release_keeps_repeated_question_ids(avdata, tmp_path_factory):
    original = TASK.load(release_root(avdata, tmp_path_factory, "json"), "test")
    assert len(original) == 9185 and len({s.id for s in original}) == 9185
    # question 1138 appears twice (same video and question, answers two and four)
    first, second = (next(s for s in original if s.id == i) for i in ("1138", "1138#2"))
    assert first.inputs == second.inputs and (first.target, second.target) == ({"answer": "two"}, {"answer": "four"})


def test_crab_example_question(test_split, updated_root):
    sample = next(s for s in test_split if s.meta["question_id"] == 4639)
    assert sample.inputs["question"] == "What is the left instrument of the first sounding instrument?"
    assert sample.target == {"answer": "saxophone"}
    assert sample.meta["type"] == "Audio-Visual/Location"
    assert sample.media["video"] == str(updated_root / "music_avqa" / "videos" / "00006835.mp4")


def test_fill_question_like_the_official_loader():
    # every word holding a placeholder becomes the next value, punctuation and all; the '?' is restored
    assert fill_question("Is the <Object> louder than the <Object>?", ["piano", "violin"]) == \
        "Is the piano louder than the violin?"
    assert fill_question("How many sounding <Object> in the video\uff1f", ["bagpipe"]) == \
        "How many sounding bagpipe in the video?"
    assert fill_question("Where is the performance? ", []) == "Where is the performance?"
    with pytest.raises(ValueError):
        fill_question("Is the <Object> playing?", [])


def write_release(root: Path, entries: list[dict]) -> None:
    (root / "music_avqa").mkdir(parents=True)
    (root / "music_avqa" / "avqa-test.json").write_text(json.dumps(entries))


ENTRY = {"video_id": "00000001", "question_id": 7, "type": '["Audio-Visual", "Existential"]',
         "question_content": "Is the <Object> in the video always playing?", "templ_values": '["ukulele"]',
         "question_deleted": 1, "anser": "yes"}


def test_small_release_without_media(tmp_path):
    write_release(tmp_path, [ENTRY])
    (sample,) = TASK.load(tmp_path, "test")
    assert sample.id == "7" and sample.inputs == {"question": "Is the ukulele in the video always playing?"}
    assert sample.meta["question_deleted"] == 1  # kept, as the official code keeps it
    assert sample.media == {"video": str(tmp_path / "music_avqa" / "videos" / "00000001.mp4"),
                            "audio": str(tmp_path / "music_avqa" / "audios" / "00000001.wav")}
    assert TASK.build_prompt(sample).startswith("This is a video:\n<video_start><video><video_end>\n")


@pytest.mark.parametrize("change, message", [
    ({"type": '["Audio", "Location"]'}, "unknown question type"),
    ({"templ_values": "[]"}, "1 placeholders but 0"),
    ({"templ_values": "ukulele"}, "not a JSON list"),
    ({"anser": None, "question_id": 9}, None),
])
def test_malformed_questions(tmp_path, change, message):
    entry = {k: v for k, v in {**ENTRY, **change}.items() if v is not None}
    write_release(tmp_path, [ENTRY, entry])
    with pytest.raises(DataError, match=message or "expected the fields") as info:
        TASK.load(tmp_path, "test")
    assert "question #2" in str(info.value)


# ---- parsing -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, answer", [
    ("So the instrument on the left of the first sounding instrument is the saxophone. "
     "So the answer is <answer> saxophone </answer>.", "saxophone"),
    ("<answer>Acoustic Guitar</answer>", "acoustic_guitar"),
    ("<ANSWER>2</ANSWER>", "two"),
    ("first <answer>yes</answer>, no wait: <answer>No.</answer>", "no"),
    ("<answer>double bass</answer>", "double bass"),  # not among the 42: kept, and simply wrong
])
def test_parse(test_split, text, answer):
    assert TASK.parse(ModelOutput(text), test_split[0]) == {"answer": answer}


@pytest.mark.parametrize("text", ["The answer is two.", "<answer>  </answer>", "<answer>...</answer>"])
def test_parse_rejects_garbage(test_split, text):
    with pytest.raises(ParseError):
        TASK.parse(ModelOutput(text), test_split[0])


def test_parsed_from_json(test_split):
    assert TASK.parsed_from_json({"answer": "Two"}, test_split[0]) == {"answer": "two"}
    for bad in ("two", {"answer": 2}, {"answer": ""}, {}):
        with pytest.raises(ParseError):
            TASK.parsed_from_json(bad, test_split[0])


# ---- scoring -------------------------------------------------------------------------------------
def test_score_normalises_and_failure_is_wrong(test_split):
    sample = next(s for s in test_split if s.target["answer"] == "two")
    assert TASK.score(sample, TASK.parse(ModelOutput("<answer> 2 </answer>"), sample)).summary == {"correct": 1.0}
    assert TASK.score(sample, {"answer": "three"}).summary == {"correct": 0.0}
    assert TASK.score(sample, None).summary == {"correct": 0.0}


def test_oracle_scores_100_on_every_metric(test_split):
    result = evaluate(test_split, [TASK.reference_output(s) for s in test_split])
    assert sorted(result) == sorted(SUBTYPES + ["audio", "visual", "audio_visual", "avg"])
    assert all(value == 100.0 for value in result.values())


def test_random_is_near_chance_and_prior_beats_it(updated_root, test_split):
    rng = np.random.default_rng(0)
    random = evaluate(test_split, [TASK.random_output(s, rng) for s in test_split])
    # 42 answers: about 1/42 = 2.4 % overall
    assert 1.0 < random["avg"] < 5.0
    # the train questions are not in avdata; val stands in for them here
    prior = TASK.fit_prior(TASK.load(updated_root, "val"))
    prior_scores = evaluate(test_split, [TASK.prior_output(prior, s) for s in test_split])
    assert prior_scores["avg"] > 10 * random["avg"]
    assert prior["template"]["Audio-Visual/Existential|Is there a voiceover?"] in ("yes", "no")


def test_only_visual_questions_leave_other_groups_absent(test_split):
    visual = [s for s in test_split if s.meta["modality"] == "Visual"]
    outputs = [TASK.reference_output(s) if s.meta["kind"] == "Counting" else ModelOutput("?") for s in visual]
    result = evaluate(visual, outputs)
    # 1,197 counting right, 1,225 location failed to parse: pooled 1197 / 2422
    assert result == pytest.approx({"visual_counting": 100.0, "visual_location": 0.0,
                                    "visual": 100 * 1197 / 2422, "avg": 100 * 1197 / 2422})
