"""AVVP task: loader on the real LLP files, parser on Crab-style text, oracle/random/prior end to end."""

from pathlib import Path

import numpy as np
import pytest

from avbench.scoring import score_outputs
from avbench.errors import DataError, ParseError
from avbench.tasks.avvp import AVVPTask
from avbench.types import ModelOutput

TASK = AVVPTask()
EXAMPLE = "6aV6c8mY0lg_30_40"
METRICS = [f"{level}_{key}" for level in ("segment", "event")
           for key in ("audio", "visual", "av", "type_av", "event_av", "avg")]


@pytest.fixture(scope="module")
def data_root(avdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("avvp-root")
    (root / "avvp").symlink_to(avdata / "avvp")
    return root


@pytest.fixture(scope="module")
def test_split(data_root):
    return TASK.load(data_root, "test")


@pytest.fixture(scope="module")
def example(test_split):
    return next(s for s in test_split if s.id == EXAMPLE)


def evaluate(samples, outputs):
    return score_outputs(TASK, samples, outputs).metrics


# ---- loading -------------------------------------------------------------------------------------
def test_real_test_split(test_split, example, data_root):
    assert len(test_split) == 1200 and len({s.id for s in test_split}) == 1200
    assert example.target == {"weak": ["Chainsaw"], "audio": {"Chainsaw": [[0, 10]]},
                              "visual": {"Chainsaw": [[0, 1], [3, 6], [9, 10]]}}
    assert example.media["video"] == str(data_root / "avvp" / "videos" / f"{EXAMPLE}.mp4")
    # 121 test videos have no row in AVVP_eval_visual.csv: all-zero visual truth, still evaluated
    assert sum(not s.target["visual"] for s in test_split) == 121


def test_train_has_weak_labels_only_and_cannot_be_scored(data_root):
    train = TASK.load(data_root, "train")
    assert len(train) == 10000
    assert train[0].target == {"weak": ["Speech", "Dog"]}  # AVVP_train.csv line 2: Speech,Dog
    with pytest.raises(DataError, match="only weak"):
        TASK.score(train[0], None)


def test_val_split_has_dense_labels(data_root):
    val = TASK.load(data_root, "val")
    assert len(val) == 649 and all("audio" in s.target for s in val)


def write_release(root: Path, split_rows: list[str], audio_rows: list[str], visual_rows: list[str]) -> Path:
    folder = root / "avvp"
    folder.mkdir(parents=True)
    (folder / "AVVP_test_pd.csv").write_text("filename\tevent_labels\n" + "".join(r + "\n" for r in split_rows))
    for name, dense in (("audio", audio_rows), ("visual", visual_rows)):
        (folder / f"AVVP_eval_{name}.csv").write_text(
            "filename\tonset\toffset\tevent_labels\n" + "".join(r + "\n" for r in dense))
    return folder


def test_small_release_rows_overlap_and_media_layouts(tmp_path):
    folder = write_release(tmp_path, ["abc_1_11\tDog,Speech", "xyz_0_10\tCar"],
                           ["abc_1_11\t0\t4\tDog", "abc_1_11\t3\t6\tDog", "abc_1_11\t9\t9\tSpeech"], [])
    (folder / "videos").mkdir()
    (folder / "videos" / "xyz.mp4").write_bytes(b"")  # this clip is stored under its YouTube id only
    abc, xyz = TASK.load(tmp_path, "test")
    # overlapping rows merge into one run [0, 6); onset == offset sets no segment
    assert abc.target["audio"] == {"Dog": [[0, 6]]} and abc.target["visual"] == {}
    assert xyz.target["audio"] == {} and xyz.target["visual"] == {}  # no dense rows: all-zero truth
    assert abc.media["video"] == str(folder / "videos" / "abc_1_11.mp4")  # absent: the default name
    assert xyz.media["video"] == str(folder / "videos" / "xyz.mp4")


@pytest.mark.parametrize("audio_row, message", [
    ("abc_1_11\t0\t4\tMeowing", "unknown LLP classes"),
    ("abc_1_11\t0\t14\tDog", "outside 0..10"),
    ("abc_1_11\tzero\t4\tDog", "must be numbers"),
    ("abc_1_11\t0\tDog", "4 tab-separated fields"),
])
def test_malformed_dense_rows_name_the_line(tmp_path, audio_row, message):
    write_release(tmp_path, ["abc_1_11\tDog"], [audio_row], [])
    with pytest.raises(DataError, match=message) as info:
        TASK.load(tmp_path, "test")
    assert info.value.line == 2 and info.value.path.endswith("AVVP_eval_audio.csv")


# ---- parsing -------------------------------------------------------------------------------------
def test_parse_crab_readme_answer(example):
    text = ("The video shows a man using a chainsaw to cut a tree. The chainsaw is visible and running from the "
            "beginning of the video (0 seconds) to the end (10 seconds). Therefore, visual and audio events are: "
            "<visual>Chainsaw,(0 10)</visual> and <audio>Chainsaw,(0 10)</audio>")
    assert TASK.parse(ModelOutput(text), example) == {"audio": {"Chainsaw": [[0, 10]]},
                                                      "visual": {"Chainsaw": [[0, 10]]}}


def test_parse_several_events_in_any_layout(example):
    text = ("Reasoning first. <audio>Speech,(0 3),(5 10)</audio> and <audio> dog , (2 4)</audio>"
            "<visual_event>Violin, fiddle,(0.4 12)</visual_event> <AUDIO>Frying (food), [1, 2] and (2 4)</AUDIO>"
            "<visual>Speech,(7 9);Dog,(0 1)</visual>")
    assert TASK.parse(ModelOutput(text), example) == {
        # LLP class order; [1,2) and [2,4) of one class merge into one run
        "audio": {"Dog": [[2, 4]], "Frying_(food)": [[1, 4]], "Speech": [[0, 3], [5, 10]]},
        # 0.4 rounds to 0 and 12 clips to 10
        "visual": {"Dog": [[0, 1]], "Speech": [[7, 9]], "Violin_fiddle": [[0, 10]]},
    }


def test_empty_tags_mean_no_events(example):
    assert TASK.parse(ModelOutput("<audio></audio> <visual> </visual>"), example) == {"audio": {}, "visual": {}}


@pytest.mark.parametrize("text", [
    "There is a dog barking and a man talking.",  # no tags
    "<audio_start><audio><audio_end>",  # an echoed placeholder is not a tag
    "<audio>Meowing,(0 3)</audio>",  # not an LLP class
    "<audio>(0 3)</audio>",  # a range without a class
    "<audio>Dog,(0 3),Speech</audio>",  # a class without a range
    "<visual>Dog,(6 2)</visual>",  # ends before it starts
])
def test_parse_rejects_garbage(example, text):
    with pytest.raises(ParseError):
        TASK.parse(ModelOutput(text), example)


def test_parsed_from_json(example):
    obj = {"audio": {"dog": [[0, 3], [2, 5]]}, "visual": {}}
    assert TASK.parsed_from_json(obj, example) == {"audio": {"Dog": [[0, 5]]}, "visual": {}}
    for bad in ({"audio": [["Dog", 0, 3]]}, {"audio": {"Dog": [[0]]}}, {"sound": {}}, {"audio": {"Dog": [["0", 3]]}}):
        with pytest.raises(ParseError):
            TASK.parsed_from_json(bad, example)


# ---- scoring -------------------------------------------------------------------------------------
def test_parse_failure_scores_as_an_empty_prediction(example):
    summary = TASK.score(example, None).summary
    # audio truth Chainsaw 0..9, nothing predicted: one kept class, F = 0
    assert summary["segment_audio"] == 0.0
    # visual truth present too -> 0; A*V truth = visual runs -> 0; pooled counts tp 0 -> 0
    assert summary["segment_visual"] == summary["segment_av"] == summary["segment_event_av"] == 0.0


def test_empty_prediction_on_an_empty_modality_scores_100(test_split):
    sample = next(s for s in test_split if not s.target["visual"] and s.target["audio"])
    summary = TASK.score(sample, None).summary
    # visual: empty truth and empty prediction -> 1.0; A*V truth empty too -> 1.0; audio -> 0
    assert (summary["segment_audio"], summary["segment_visual"], summary["segment_av"]) == (0.0, 100.0, 100.0)
    assert summary["segment_type_av"] == pytest.approx(200 / 3)


def test_oracle_scores_100_on_every_metric(test_split):
    result = evaluate(test_split, [TASK.reference_output(s) for s in test_split])
    assert sorted(result) == sorted(METRICS)
    assert all(value == pytest.approx(100.0) for value in result.values())


def test_random_is_low_and_prior_beats_it(data_root, test_split):
    subset = test_split[::3]  # 400 videos: random answers are long, and 400 settle the comparison
    rng = np.random.default_rng(0)
    random = evaluate(subset, [TASK.random_output(s, rng) for s in subset])
    # a fair coin per segment: many false classes per video, each kept with F = 0
    assert 0.0 < random["segment_avg"] < 10.0 and random["event_avg"] < random["segment_avg"]
    prior = TASK.fit_prior(TASK.load(data_root, "train"))
    # Speech is on 4,988 of 10,000 train videos, Violin_fiddle on 1,457; 1.6 labels a video -> top 2
    assert prior["classes"] == ["Speech", "Violin_fiddle"]
    assert prior["frequency"]["Speech"] == pytest.approx(0.4988)
    prior_scores = evaluate(subset, [TASK.prior_output(prior, s) for s in subset])
    assert prior_scores["segment_avg"] > random["segment_avg"]
    assert prior_scores["event_avg"] > random["event_avg"]


def test_parse_failures_count_as_empty_predictions(test_split):
    failures = evaluate(test_split, [ModelOutput("no idea")] * len(test_split))
    subset = test_split[:200]
    empty = evaluate(subset, [ModelOutput("<audio></audio><visual></visual>")] * len(subset))
    assert evaluate(subset, [ModelOutput("no idea")] * len(subset)) == empty
    # only videos with an empty truth in a modality earn credit: 6 of 1200 for audio, 121 for visual
    assert failures["segment_audio"] == pytest.approx(100 * 6 / 1200)
    assert failures["segment_visual"] == pytest.approx(100 * 121 / 1200)
