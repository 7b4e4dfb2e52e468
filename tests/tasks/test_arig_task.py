"""ARIG task: loading S4 frames as boxes, prompt, parsing, oracle / failure scoring, baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avsbench_tree import write_metadata, write_video
from avbench.errors import DataError, ParseError
from avbench.masks import read_binary_mask
from avbench.types import ModelOutput
from avbench.tasks.arig import ARIGTask, mask_box



def _rect(size: int, cls: int, rows: slice, cols: slice) -> np.ndarray:
    labels = np.zeros((size, size), dtype=np.int64)
    labels[rows, cols] = cls
    return labels


@pytest.fixture()
def data_root(tmp_path: Path) -> Path:
    # Test video A (112 x 112 masks, upscaled x2 to 224): nearest maps output pixel x to source x // 2,
    # so source columns 10..19 become 20..39 and rows 30..49 become 60..99.
    two_colours = _rect(112, 28, slice(30, 40), slice(10, 20))
    two_colours[40:50, 50:60] = 14  # a second colour: the box spans the whole foreground
    masks_a = {
        0: _rect(112, 28, slice(30, 50), slice(10, 20)),
        1: two_colours,
        2: _rect(112, 28, slice(0, 1), slice(0, 1)),
        3: np.zeros((112, 112), dtype=np.int64),  # empty: not a sample
        4: _rect(112, 28, slice(100, 112), slice(100, 112)),
    }
    write_video(tmp_path, "v1s", "aaa_0_5000", masks_a)
    # Test video B (448 x 448, downscaled /2): output x samples source 2x + 1, so columns 10..19 -> 5..9.
    write_video(tmp_path, "v1s", "bbb_0_5000", {i: _rect(448, 7, slice(10, 20), slice(10, 20)) for i in range(5)})
    # Multi-source and v2 videos are not ARIG data; train v1s annotates frame 0 only.
    write_video(tmp_path, "v1m", "mmm_1", {i: _rect(112, 3, slice(0, 5), slice(0, 5)) for i in range(5)})
    write_video(tmp_path, "v1s", "ttt_0_5000", {0: _rect(112, 28, slice(0, 56), slice(0, 56))})
    write_video(tmp_path, "v1s", "uuu_0_5000", {0: _rect(112, 28, slice(56, 112), slice(56, 112))})
    write_metadata(tmp_path, [
        ("aaa_0_5000", "test", "v1s"), ("mmm_1", "test", "v1m"), ("bbb_0_5000", "test", "v1s"),
        ("ttt_0_5000", "train", "v1s"), ("uuu_0_5000", "train", "v1s"),
    ])
    return tmp_path


def test_load_derives_whole_foreground_boxes(data_root: Path) -> None:
    samples = ARIGTask().load(data_root, "test")
    ids = [s.id for s in samples]
    assert ids == ["aaa_0_5000/0", "aaa_0_5000/1", "aaa_0_5000/2", "aaa_0_5000/4"] + [f"bbb_0_5000/{i}" for i in range(5)]
    boxes = {s.id: s.target["box"] for s in samples}
    # Rows 30..49, cols 10..19 at 112 -> rows 60..99, cols 20..39 at 224.
    assert boxes["aaa_0_5000/0"] == [20, 60, 39, 99]
    # Two colours: cols 10..19 and 50..59, rows 30..49 -> x 20..119, y 60..99.
    assert boxes["aaa_0_5000/1"] == [20, 60, 119, 99]
    # One source pixel -> a 2 x 2 block.
    assert boxes["aaa_0_5000/2"] == [0, 0, 1, 1]
    assert boxes["aaa_0_5000/4"] == [200, 200, 223, 223]
    assert boxes["bbb_0_5000/3"] == [5, 5, 9, 9]
    first = samples[0]
    assert first.media["image"].endswith("avsbench/v1s/aaa_0_5000/frames/0.jpg")
    assert first.media["audio"].endswith("avsbench/v1s/aaa_0_5000/audio.wav")
    assert first.meta["frame"] == 0 and first.inputs["frame_index"] == 0


def test_train_uses_the_annotated_first_frame_only(data_root: Path) -> None:
    samples = ARIGTask().load(data_root, "train")
    assert [s.id for s in samples] == ["ttt_0_5000/0", "uuu_0_5000/0"]


def test_missing_test_mask_is_a_data_error(data_root: Path) -> None:
    (data_root / "avsbench/v1s/bbb_0_5000/labels_rgb/2.png").unlink()
    with pytest.raises(DataError, match="2.png"):
        ARIGTask().load(data_root, "test")
    (data_root / "avsbench/v1s/ttt_0_5000/labels_rgb/0.png").unlink()
    with pytest.raises(DataError, match="without any mask"):
        ARIGTask().load(data_root, "train")


def test_prompt_has_image_and_audio_blocks_and_the_tag() -> None:
    from avbench.types import Sample

    prompt = ARIGTask().build_prompt(Sample(id="x/0", task="arig", split="test", media={}))
    assert prompt.startswith("This is an image:\n<image_start><image><image_end>\nThis is an audio:\n<audio_start><audio><audio_end>\n")
    assert "<obj>(x1,y1)(x2,y2)</obj>" in prompt


def test_oracle_scores_the_maximum(data_root: Path) -> None:
    task = ARIGTask()
    samples = task.load(data_root, "test")
    stats = []
    for sample in samples:
        parsed = task.parse(task.reference_output(sample), sample)
        assert parsed == {"boxes": [[float(v) for v in sample.target["box"]]]}
        stats.append(task.score(sample, parsed).stats)
    assert task.aggregate(samples, stats) == {"ciou": 100.0, "auc": pytest.approx(1.0)}


def test_parse_variants_and_failures(data_root: Path) -> None:
    task = ARIGTask()
    sample = task.load(data_root, "test")[0]  # box [20, 60, 39, 99]
    text = "It is a guitar <obj>(0,0)(5,5)</obj> and <OBJ>( 20 , 60 ),( 39.0 , 99 )</OBJ>."
    parsed = task.parse(ModelOutput(text=text), sample)
    assert parsed["boxes"] == [[0, 0, 5, 5], [20, 60, 39, 99]]
    # The best box counts: the second is exact.
    assert task.score(sample, parsed).stats == 1.0
    for bad in ("", "(20,60)(39,99)", "<obj>(20,60)</obj>", "<obj>(a,b)(c,d)</obj>"):
        with pytest.raises(ParseError):
            task.parse(ModelOutput(text=bad), sample)
    # A parse failure is IoU 0.
    assert task.score(sample, None).summary == {"iou": 0.0}
    with pytest.raises(ParseError):
        task.parsed_from_json({"boxes": [[1, 2, 3]]}, sample)
    assert task.parsed_from_json({"boxes": [[1, 2, 3, 4]]}, sample) == {"boxes": [[1.0, 2.0, 3.0, 4.0]]}


def test_aggregate_by_hand(data_root: Path) -> None:
    task = ARIGTask()
    samples = task.load(data_root, "test")[:2]
    # IoUs 1 and 0 (a failure): cIoU = 1/2 -> 50 %; AUC = (1 + 0.025) / 2 = 0.5125
    # (IoU 0 still passes threshold 0: one half-step trapezoid of 0.025).
    stats = [task.score(samples[0], {"boxes": [samples[0].target["box"]]}).stats, task.score(samples[1], None).stats]
    assert task.aggregate(samples, stats) == {"ciou": 50.0, "auc": pytest.approx(0.5125)}


def test_random_output_is_a_valid_seeded_box(data_root: Path) -> None:
    task = ARIGTask()
    sample = task.load(data_root, "test")[0]
    outputs = [task.random_output(sample, np.random.default_rng(seed)) for seed in range(20)]
    boxes = [task.parse(o, sample)["boxes"][0] for o in outputs]
    for x1, y1, x2, y2 in boxes:
        assert 0 <= x1 <= x2 <= 223 and 0 <= y1 <= y2 <= 223
    assert len({tuple(b) for b in boxes}) > 1
    assert task.random_output(sample, np.random.default_rng(3)).text == outputs[3].text


def test_prior_is_the_mean_train_box(data_root: Path) -> None:
    task = ARIGTask()
    train = task.load(data_root, "train")
    # Train boxes [0, 0, 111, 111] and [112, 112, 223, 223] -> mean [56, 56, 167, 167].
    prior = task.fit_prior(train)
    assert prior == {"box": [56, 56, 167, 167]}
    sample = task.load(data_root, "test")[0]
    assert task.parse(task.prior_output(prior, sample), sample) == {"boxes": [[56.0, 56.0, 167.0, 167.0]]}


def test_box_of_the_real_s4_example(avdata: Path) -> None:
    path = avdata / "examples/s4/0.png"
    with Image.open(path) as image:
        assert image.mode == "L"
        width, height = image.size
    foreground = read_binary_mask(path)
    box = mask_box(foreground)
    # Independent re-derivation: nearest resampling to 224 reads source column floor((x + 0.5) * W / 224);
    # the box is the first / last output column (row) whose source column (row) holds foreground.
    src_cols = np.floor((np.arange(224) + 0.5) * width / 224).astype(int)
    src_rows = np.floor((np.arange(224) + 0.5) * height / 224).astype(int)
    xs = np.flatnonzero(foreground.any(axis=0)[src_cols])
    ys = np.flatnonzero(foreground[src_rows][:, src_cols].any(axis=1))
    assert box == [xs[0], ys[0], xs[-1], ys[-1]]
    # And it lies within the full-resolution box scaled to 224.
    cols = np.flatnonzero(foreground.any(axis=0))
    assert cols[0] * 224 / width - 1 <= box[0] <= box[2] <= (cols[-1] + 1) * 224 / width
