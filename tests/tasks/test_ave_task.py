"""AVE task: loader on the real release files, parser on Crab-style text, oracle/random/prior end to end."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from avbench.scoring import score_outputs
from avbench.errors import DataError, ParseError
from avbench.tasks.ave import AVETask
from avbench.types import ModelOutput

TASK = AVETask()


@pytest.fixture(scope="module")
def data_root(avdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ave-root")
    (root / "ave").symlink_to(avdata / "ave")
    return root


@pytest.fixture(scope="module")
def test_split(data_root):
    return TASK.load(data_root, "test")


def evaluate(samples, outputs):
    return score_outputs(TASK, samples, outputs).metrics


def by_id(samples, sample_id):
    return next(s for s in samples if s.id == sample_id)


# ---- loading -------------------------------------------------------------------------------------
def test_real_splits_load(data_root, test_split):
    train, val = TASK.load(data_root, "train"), TASK.load(data_root, "val")
    assert (len(train), len(val), len(test_split)) == (3339, 402, 402)
    for split in (train, val, test_split):
        assert len({s.id for s in split}) == len(split)


def test_example_video_is_in_test(data_root, test_split):
    sample = by_id(test_split, "-67UNKFmRLk")
    assert sample.target == {"event": "Violin, fiddle", "start": 7, "end": 10}
    assert sample.meta["annotation_line"] == 1410
    assert sample.media["video"] == str(data_root / "ave" / "videos" / "-67UNKFmRLk.mp4")
    assert sample.media["audio"] == str(data_root / "ave" / "audios" / "-67UNKFmRLk.wav")
    for split in ("train", "val"):
        assert all(s.meta["video_id"] != "-67UNKFmRLk" for s in TASK.load(data_root, split))


def test_a_video_annotated_twice_gets_a_suffixed_id(data_root):
    val = TASK.load(data_root, "val")
    first, second = by_id(val, "3tsi7DKGrWQ"), by_id(val, "3tsi7DKGrWQ#2")
    # the val order lists row 2929 (Banjo) before row 4078 (Mandolin)
    assert (first.target["event"], second.target["event"]) == ("Banjo", "Mandolin")


def test_zero_length_annotation_is_all_background(data_root):
    sample = by_id(TASK.load(data_root, "train"), "VWi2ENBuTbw")  # Annotations.txt: Church bell&...&0&0
    assert (sample.target["start"], sample.target["end"]) == (0, 0)
    assert TASK.score(sample, TASK.parse(TASK.reference_output(sample), sample)).stats == (10, 10)


def write_release(root: Path, lines: list[str], orders: dict[str, list[int]]) -> None:
    (root / "ave").mkdir(parents=True)
    (root / "ave" / "Annotations.txt").write_text("".join(line + "\n" for line in lines))
    for split, order in orders.items():
        with h5py.File(root / "ave" / f"{split}_order.h5", "w") as handle:
            handle.create_dataset("order", data=np.asarray(order, dtype=np.int64))


def test_small_release_without_media(tmp_path):
    write_release(tmp_path, ["Bark&dog1&good&2&5", "Clock&clk1&good&0&10"], {"test": [1, 0]})
    samples = TASK.load(tmp_path, "test")
    assert [s.id for s in samples] == ["clk1", "dog1"]  # h5 order, not file order
    assert samples[1].target == {"event": "Bark", "start": 2, "end": 5}
    assert samples[1].media == {"video": str(tmp_path / "ave" / "videos" / "dog1.mp4"),
                                "audio": str(tmp_path / "ave" / "audios" / "dog1.wav")}
    assert not (tmp_path / "ave" / "videos").exists()


@pytest.mark.parametrize("lines, message, line", [
    (["Bark&d&good&0&3", "Bark&e&good&3"], "5 '&'-separated", 2),
    (["Bark&d&good&0&3", "Meow&e&good&0&3"], "unknown AVE category", 2),
    (["Bark&d&good&5&3"], "start <= end", 1),
])
def test_malformed_annotations_name_the_line(tmp_path, lines, message, line):
    write_release(tmp_path, lines, {"test": [0]})
    with pytest.raises(DataError, match=message) as info:
        TASK.load(tmp_path, "test")
    assert info.value.line == line and info.value.path.endswith("Annotations.txt")


def test_order_index_outside_the_file(tmp_path):
    write_release(tmp_path, ["Bark&d&good&0&3"], {"test": [3]})
    with pytest.raises(DataError, match="outside Annotations.txt"):
        TASK.load(tmp_path, "test")


# ---- parsing -------------------------------------------------------------------------------------
def test_parse_crab_readme_answer(test_split):
    text = ("A man is giving a speech from a podium in a classroom. The man speaks from the beginning of the "
            "video until the 8th second. So the audible and visible event in the video is <event> Male speech, "
            "man speaking </event>, and the time range is <range> 0,8 </range>.")
    assert TASK.parse(ModelOutput(text), test_split[0]) == {"event": "Male speech, man speaking", "start": 0, "end": 8}


@pytest.mark.parametrize("text, expected", [
    ("<EVENT>violin fiddle</EVENT> <range>[7 - 10]</range>", ("Violin, fiddle", 7, 10)),
    ("<event>frying food</event><range>2 to 4</range>", ("Frying (food)", 2, 4)),
    ("<event>Bark</event><range>7,12</range>", ("Bark", 7, 10)),  # clipped to the video
    ("<event>Bark</event><range>2.4,7.6</range>", ("Bark", 2, 8)),  # rounded to whole seconds
    ("<event>Bark</event><range>from 3s to 6s</range>", ("Bark", 3, 6)),
    ("<event>Cat</event><range>1,2</range> on second thought <event>Bark</event><range>3,4</range>", ("Bark", 3, 4)),
])
def test_parse_is_tolerant(test_split, text, expected):
    parsed = TASK.parse(ModelOutput(text), test_split[0])
    assert (parsed["event"], parsed["start"], parsed["end"]) == expected


@pytest.mark.parametrize("text", [
    "I am not sure what happens in this video.",
    "<event>Bark</event>",  # no range
    "<event>Meowing</event><range>0,3</range>",  # not an AVE class
    "<event>Bark</event><range>8,3</range>",  # ends before it starts
    "<event>Bark</event><range>soon</range>",
    "<event>Bark</event><range>1,2,3</range>",
])
def test_parse_rejects_garbage(test_split, text):
    with pytest.raises(ParseError):
        TASK.parse(ModelOutput(text), test_split[0])


def test_parsed_from_json(test_split):
    sample = test_split[0]
    parsed = TASK.parsed_from_json({"event": "bark", "start": 1, "end": 3}, sample)
    assert parsed == {"event": "Bark", "start": 1, "end": 3}
    bad_objects = ({"event": "Bark"}, {"event": "Bark", "start": "1", "end": 3}, ["Bark", 1, 3],
                   {"event": 3, "start": 0, "end": 1})
    for bad in bad_objects:
        with pytest.raises(ParseError):
            TASK.parsed_from_json(bad, sample)


# ---- scoring -------------------------------------------------------------------------------------
def test_score_counts_segments(test_split):
    sample = by_id(test_split, "-67UNKFmRLk")  # Violin, fiddle on 7..9
    # right class on 5..9: segments 5, 6 wrong, the other 8 right
    assert TASK.score(sample, {"event": "Violin, fiddle", "start": 5, "end": 10}).stats == (8, 10)
    # wrong class on 7..9: only the 7 background segments right
    assert TASK.score(sample, {"event": "Banjo", "start": 7, "end": 10}).summary["accuracy"] == 70.0
    # a parse failure is a wrong answer: no segment right, not even the background ones
    assert TASK.score(sample, None).stats == (0, 10)


def test_oracle_scores_100_on_real_test(test_split):
    assert evaluate(test_split, [TASK.reference_output(s) for s in test_split]) == {"accuracy": 100.0}


def test_random_is_low_and_prior_beats_it(data_root, test_split):
    rng = np.random.default_rng(0)
    random_acc = evaluate(test_split, [TASK.random_output(s, rng) for s in test_split])["accuracy"]
    # mostly background right where the random span misses: well above 0, far below the oracle
    assert 5.0 < random_acc < 30.0
    prior = TASK.fit_prior(TASK.load(data_root, "train"))
    prior_acc = evaluate(test_split, [TASK.prior_output(prior, s) for s in test_split])["accuracy"]
    assert prior_acc > random_acc


def test_prior_is_the_best_constant_answer_on_train(data_root):
    train = TASK.load(data_root, "train")
    prior = TASK.fit_prior(train)
    prior_acc = evaluate(train, [TASK.prior_output(prior, s) for s in train])["accuracy"]
    assert prior_acc == pytest.approx(prior["train_accuracy"])
    # e.g. the majority class over the whole video is no better
    whole = ModelOutput("<event>Church bell</event><range>0,10</range>")
    assert evaluate(train, [whole] * len(train))["accuracy"] <= prior["train_accuracy"]


def test_parse_failures_count_as_wrong(test_split):
    outputs = [TASK.reference_output(s) if i % 2 else ModelOutput("no idea") for i, s in enumerate(test_split)]
    # half the videos (201 of 402) perfect, the others 0: 2010 / 4020 segments
    assert evaluate(test_split, outputs)["accuracy"] == pytest.approx(50.0)
