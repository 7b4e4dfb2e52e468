"""The real release files (../shared/avdata): counts, classes and known samples, the pinned data versions,
the example media decoded, and a full load + run on a data root assembled from both.

What is asserted comes from the files and the papers (split sizes of the issue, the annotations quoted
in avdata/README.md and examples/manifest.json), never from avbench's own output.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from avbench.data_versions import version_of
from avbench.datasets.ave import read_rows
from avbench.media import MediaError, MediaSpec, decode_audio, decode_media, decode_video
from avbench.registry import get_model, get_task
from avbench.runner import RunConfig, run
from avbench.vocab import AVE_LABELS, AVQA_ANSWERS, AVSS_CLASSES, LLP_CLASSES


@pytest.fixture
def real_root(avdata: Path, tmp_path: Path) -> Path:
    """A data root in the documented layout whose sub-folders are the real release folders."""
    root = tmp_path / "data"
    root.mkdir()
    (root / "ave").symlink_to(avdata / "ave")
    (root / "avvp").symlink_to(avdata / "avvp")
    (root / "music_avqa").symlink_to(avdata / "music_avqa" / "json_update")
    return root


def test_oracle_scores_the_maximum_on_the_real_test_sets(real_root: Path, tmp_path: Path) -> None:
    config = RunConfig(model="oracle", tasks=["ave", "avvp", "music_avqa"], output_dir=tmp_path / "out",
                       data_root=real_root, batch_size=256)
    results = {r.task: r for r in run(get_model("oracle"), config)}
    assert {t: r.n_samples for t, r in results.items()} == {"ave": 402, "avvp": 1200, "music_avqa": 9129}
    for result in results.values():
        assert result.n_parse_failures == 0
        assert all(v == pytest.approx(100.0) for v in result.metrics.values()), result.metrics
    # the nine MUSIC-AVQA sub-types, three groups and the overall average are all reported
    assert len(results["music_avqa"].metrics) == 13
    # the results record which annotations were scored
    assert results["music_avqa"].data_version["name"] == "musicavqa-updated"
    assert results["ave"].data_version == {"name": "ave-eccv18", "known": True, "hash": "2efcab44df06120f",
                                           "n_samples": 402, "expected_samples": 402}


# ---- counts, classes, known samples --------------------------------------------------------------

def test_ave_counts_classes_and_the_violin_example(avdata: Path) -> None:
    rows = read_rows(avdata / "ave" / "Annotations.txt")
    assert len(rows) == 4143
    assert len({r.event for r in rows}) + 1 == len(AVE_LABELS) == 29  # 28 events + background
    task = get_task("ave")
    assert [len(task.load(avdata, s)) for s in ("train", "val", "test")] == [3339, 402, 402]
    [violin] = [s for s in task.load(avdata, "test") if s.id == "-67UNKFmRLk"]
    assert violin.target == {"event": "Violin, fiddle", "start": 7, "end": 10}


def test_llp_counts_classes_and_the_chainsaw_example(avdata: Path) -> None:
    task = get_task("avvp")
    test = task.load(avdata, "test")
    assert (len(task.load(avdata, "train")), len(task.load(avdata, "val")), len(test)) == (10000, 649, 1200)
    classes = set()
    with (avdata / "avvp" / "AVVP_train.csv").open() as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            classes.update(row["event_labels"].split(","))
    assert classes == set(LLP_CLASSES) and len(classes) == 25
    [chainsaw] = [s for s in test if s.id == "6aV6c8mY0lg_30_40"]
    assert chainsaw.target["audio"] == {"Chainsaw": [[0, 10]]}
    assert chainsaw.target["visual"] == {"Chainsaw": [[0, 1], [3, 6], [9, 10]]}


def test_music_avqa_versions_answers_and_the_saxophone_question(avdata: Path) -> None:
    updated, original = get_task("music_avqa"), get_task("music_avqa", version="original")
    assert len(updated.load(avdata, "test")) == 9129 and len(original.load(avdata, "test")) == 9185
    answers = set()
    for folder in ("json", "json_update"):
        for split in ("val", "test"):
            answers |= {q["anser"] for q in json.loads((avdata / "music_avqa" / folder / f"avqa-{split}.json").read_text())}
    # 42 answers in all; "ten" occurs only in the train questions, which avdata does not ship
    assert len(AVQA_ANSWERS) == 42 and answers == set(AVQA_ANSWERS) - {"ten"}
    [question] = [s for s in updated.load(avdata, "test") if s.id == "4639"]
    assert question.inputs["question"] == "What is the left instrument of the first sounding instrument?"
    assert question.target == {"answer": "saxophone"} and question.meta["type"] == "Audio-Visual/Location"
    assert question.meta["video_id"] == "00006835"


def test_avss_has_71_classes_in_label2idx_order(avdata: Path) -> None:
    label2idx = json.loads((avdata / "avss" / "label2idx.json").read_text())
    assert len(label2idx) == len(AVSS_CLASSES) == 71
    # label2idx is 1-based with background = 1; AVSS scores 0-based ids with background = 0
    assert [name for name, _ in sorted(label2idx.items(), key=lambda kv: kv[1])] == list(AVSS_CLASSES)


def test_ref_avs_split_sizes_from_the_refavs_folder(avdata: Path) -> None:
    task = get_task("ref_avs")  # avdata names the folder refavs/, the release's own name
    assert {s: len(task.load(avdata, s)) for s in ("test_s", "test_u", "test_n")} == {
        "test_s": 2288, "test_u": 1656, "test_n": 1028}


# ---- pinned data versions ------------------------------------------------------------------------

@pytest.mark.parametrize("task_name, options, split, name, count", [
    ("ave", {}, "test", "ave-eccv18", 402),
    ("avvp", {}, "test", "llp-eccv20", 1200),
    ("music_avqa", {}, "test", "musicavqa-updated", 9129),
    ("music_avqa", {"version": "original"}, "test", "musicavqa-original", 9185),
    ("ref_avs", {}, "test_s", "refavs-eccv24", 2288),
])
def test_the_release_files_are_known_versions(avdata: Path, task_name, options, split, name, count) -> None:
    task = get_task(task_name, **options)
    version = version_of(task, avdata, split, len(task.load(avdata, split)))
    assert (version.name, version.known, version.n_samples) == (name, True, count)


def test_a_changed_label_is_an_unknown_version(avdata: Path, tmp_path: Path) -> None:
    questions = json.loads((avdata / "music_avqa" / "json_update" / "avqa-test.json").read_text())
    questions[0]["anser"] = "two" if questions[0]["anser"] != "two" else "three"
    (tmp_path / "music_avqa").mkdir()
    # re-indented: formatting alone would not change the version, the edited answer does
    (tmp_path / "music_avqa" / "avqa-test.json").write_text(json.dumps(questions, indent=1))
    task = get_task("music_avqa")
    version = version_of(task, tmp_path, "test", len(task.load(tmp_path, "test")))
    assert (version.name, version.known, version.n_samples, version.expected_samples) == ("unknown", False, 9129, 9129)


def test_ave_text_split_files_are_the_same_version_as_the_h5_ones(avdata: Path, tmp_path: Path) -> None:
    # The dataset zip ships testSet.txt (same `&` format, with a header) instead of test_order.h5.
    task = get_task("ave")
    rows = [s for s in task.load(avdata, "test")]
    lines = [f"{s.target['event']}&{s.meta['video_id']}&{s.meta['quality']}&{s.target['start']}&{s.target['end']}"
             for s in reversed(rows)]
    (tmp_path / "ave").mkdir()
    (tmp_path / "ave" / "testSet.txt").write_text("Category&VideoID&Quality&StartTime&EndTime\r\n" + "\r\n".join(lines))
    loaded = task.load(tmp_path, "test")
    assert sorted(s.id for s in loaded) == sorted(s.id for s in rows) and loaded[0].meta["annotation_line"] == 2
    assert version_of(task, tmp_path, "test", len(loaded)).name == "ave-eccv18"


# ---- example media --------------------------------------------------------------------------------

def test_example_videos_and_audio_decode(avdata: Path) -> None:
    examples = avdata / "examples"
    frames = decode_video(examples / "ave" / "-67UNKFmRLk.mp4", 10, 224)  # 450x360, 25 fps, 250 frames
    assert frames.shape == (10, 224, 224, 3) and frames.dtype == np.uint8 and frames.std() > 10
    assert decode_video(examples / "avvp" / "6aV6c8mY0lg.mp4", 10, 224).shape == (10, 224, 224, 3)
    mp3 = decode_audio(examples / "ave" / "-67UNKFmRLk.mp3", 16000, 10.0)  # 16 kHz stereo mp3
    from_mp4 = decode_audio(examples / "ave" / "-67UNKFmRLk.mp4", 16000, 10.0)  # 44.1 kHz stereo AAC, resampled
    assert mp3.shape == from_mp4.shape == (160000,)
    assert np.corrcoef(mp3, from_mp4)[0, 1] > 0.99  # the same sound through two codecs and a resampler
    wav48 = decode_audio(examples / "avss" / "audio.wav", 16000, 10.0)  # 48 kHz stereo wav
    assert wav48.shape == (160000,) and np.abs(wav48).max() > 0.1
    s4_audio = decode_audio(examples / "s4" / "audio.wav", 16000, 10.0)  # 5.02 s: zero-padded to 10 s
    assert s4_audio[:80000].any() and not s4_audio[80400:].any()


def test_example_masks_binary_and_palette(avdata: Path) -> None:
    from PIL import Image

    from avbench.masks import read_binary_mask
    from avbench.tasks.avss import read_class_map

    for name in ("s4/0.png", "ms3/1.png", "ref-avs/00007.png"):
        with Image.open(avdata / "examples" / name) as image:
            raw = np.array(image)
        # single-channel masks, background 0; foreground = any non-zero value (the MS3 one has two sources: 9, 41)
        assert raw.ndim == 2 and raw.min() == 0 and 2 <= len(np.unique(raw)) <= 3
        assert read_binary_mask(avdata / "examples" / name).sum() == (raw > 0).sum() > 0
    # (64, 128, 128) in the PASCAL-VOC bit palette is index 14 (bits 1, 2 from 128s, bit 3 from 64): clarinet
    labels = read_class_map(avdata / "examples" / "avss" / "0.png")
    assert set(np.unique(labels)) == {0, 14} and AVSS_CLASSES[14] == "clarinet"


# ---- a data root assembled from the real annotations and the example media ------------------------

@pytest.fixture
def assembled_root(avdata: Path, tmp_path: Path) -> Path:
    """Real annotation files + the example media, in the accepted release layouts (docs/data-layout.md)."""
    ex = avdata / "examples"
    root = tmp_path / "data"
    ave = root / "ave"
    (ave / "AVE").mkdir(parents=True)  # the AVE zip's video folder
    for name in ("Annotations.txt", "test_order.h5"):
        (ave / name).symlink_to(avdata / "ave" / name)
    (ave / "AVE" / "-67UNKFmRLk.mp4").symlink_to(ex / "ave" / "-67UNKFmRLk.mp4")
    avvp = root / "avvp"
    (avvp / "video").mkdir(parents=True)
    for name in ("AVVP_test_pd.csv", "AVVP_eval_audio.csv", "AVVP_eval_visual.csv"):
        (avvp / name).symlink_to(avdata / "avvp" / name)
    (avvp / "video" / "6aV6c8mY0lg.mp4").symlink_to(ex / "avvp" / "6aV6c8mY0lg.mp4")  # named by YouTube id
    (avvp / "audios").mkdir()
    (avvp / "audios" / "6aV6c8mY0lg.mp3").symlink_to(ex / "avvp" / "6aV6c8mY0lg.mp3")
    avqa = root / "music_avqa"
    (avqa / "json_update").mkdir(parents=True)
    (avqa / "json_update" / "avqa-test.json").symlink_to(avdata / "music_avqa" / "json_update" / "avqa-test.json")
    (avqa / "audios").mkdir()
    (avqa / "audios" / "00006835.mp3").symlink_to(ex / "avqa" / "00006835.mp3")
    refavs = root / "refavs"
    vid = "-8mcyL3kWNQ_8000_18000"
    (refavs / "media" / vid / "frames").mkdir(parents=True)
    (refavs / "metadata.csv").symlink_to(avdata / "refavs" / "metadata.csv")
    (refavs / "media" / vid / "frames" / "7.jpg").symlink_to(ex / "ref-avs" / "7.jpg")
    (refavs / "media" / vid / "audio.wav").symlink_to(ex / "ref-avs" / "audio.wav")
    (refavs / "gt_mask" / vid / "fid_11").mkdir(parents=True)
    (refavs / "gt_mask" / vid / "fid_11" / "00007.png").symlink_to(ex / "ref-avs" / "00007.png")
    # AVSBench: avdata has no metadata.csv, so one is written for the three example videos (train
    # split: train videos may annotate one frame only, as the release's v1s train videos do).
    avs = root / "avsbench"
    avs.mkdir()
    rows = [("_4R3qHn1n50_0_5000", "v1s", "s4", "0"), ("3vheOi4y540_1", "v1m", "ms3", "1"),
            ("_aldtLqTVYI_1000_11000", "v2", "avss", "0")]
    lines = ["vid,uid,s_min,s_sec,a_obj,split,label"]
    for uid, label, example, frame in rows:
        folder = avs / label / uid
        (folder / "frames").mkdir(parents=True)
        (folder / "labels_rgb").mkdir()
        (folder / "frames" / f"{frame}.jpg").symlink_to(ex / example / f"{frame}.jpg")
        (folder / "labels_rgb" / f"{frame}.png").symlink_to(ex / example / f"{frame}.png")
        (folder / "audio.wav").symlink_to(ex / example / "audio.wav")
        lines.append(f"{uid},{uid},0,0,example,train,{label}")
    (avs / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def test_full_load_resolves_and_decodes_the_real_media(assembled_root: Path) -> None:
    spec = MediaSpec()
    [violin] = [s for s in get_task("ave").load(assembled_root, "test") if s.id == "-67UNKFmRLk"]
    media = decode_media(violin, spec)  # video from AVE/, audio from the mp4's AAC stream
    assert media.frames.shape == (10, 224, 224, 3) and media.audio.shape == (160000,) and media.audio.any()
    [chainsaw] = [s for s in get_task("avvp").load(assembled_root, "test") if s.id == "6aV6c8mY0lg_30_40"]
    assert chainsaw.media["video"].endswith("video/6aV6c8mY0lg.mp4")
    assert chainsaw.media["audio"].endswith("audios/6aV6c8mY0lg.mp3")
    assert decode_media(chainsaw, spec).audio.shape == (160000,)
    [question] = [s for s in get_task("music_avqa").load(assembled_root, "test") if s.id == "4639"]
    assert decode_media(question, MediaSpec(need_video=False)).audio.shape == (160000,)  # first 10 s of 60
    with pytest.raises(MediaError, match="video file not found"):  # the example has no video
        decode_media(question, spec)
    [loudest] = [s for s in get_task("ref_avs").load(assembled_root, "test_u")
                 if s.meta["vid"] == "-8mcyL3kWNQ_8000_18000" and s.inputs["expression"] == "The object making the loudest sound."]
    assert loudest.target["masks"][7].endswith("gt_mask/-8mcyL3kWNQ_8000_18000/fid_11/00007.png")
    s4 = get_task("s4").load(assembled_root, "train")
    assert [s.id for s in s4] == ["_4R3qHn1n50_0_5000"] and s4[0].target["mask_frames"] == [0]
    assert len(get_task("ms3").load(assembled_root, "train")) == 1
    avss = get_task("avss").load(assembled_root, "train")
    assert sorted(s.meta["subset"] for s in avss) == ["v1m", "v1s", "v2"]
    assert {s.meta["subset"]: s.meta["n_padded_frames"] for s in avss} == {"v1s": 5, "v1m": 5, "v2": 0}
    [arig] = get_task("arig").load(assembled_root, "train")  # the box of the S4 example mask
    x1, y1, x2, y2 = arig.target["box"]
    assert 0 <= x1 <= x2 < 224 and 0 <= y1 <= y2 < 224


def test_run_with_missing_media_skips_and_counts_them(assembled_root: Path, tmp_path: Path) -> None:
    from avbench.adapter import ModelAdapter

    class ReadsMedia(ModelAdapter):
        name = "reads_media"
        media_spec = MediaSpec(n_frames=2, frame_size=32, audio_seconds=1.0)

        def predict(self, task, samples, prompts, media=None):
            assert media is not None and all(m.frames.shape == (2, 32, 32, 3) for m in media)
            return [task.reference_output(s) for s in samples]

    config = RunConfig(model="reads_media", tasks=["ave"], output_dir=tmp_path / "out", data_root=assembled_root,
                       batch_size=64, on_error="skip")
    [result] = run(ReadsMedia(), config)
    # 1 of the 402 test videos is present: it is answered perfectly, the 401 others are failures, not dropped
    assert (result.n_samples, result.n_media_errors, result.n_parse_failures) == (402, 401, 0)
    assert result.metrics["accuracy"] == pytest.approx(100.0 / 402)
    assert result.data_version["name"] == "ave-eccv18"


def test_data_check_lists_the_missing_media(assembled_root: Path) -> None:
    from typer.testing import CliRunner

    from avbench.cli import app

    result = CliRunner().invoke(app, ["data", "check", "ave", "--data-root", str(assembled_root)])
    assert result.exit_code == 1, result.output
    assert "ave-eccv18" in result.output and "401 missing or undecodable" in result.output
    assert "videos/-67UNKFmRLk.mp4" not in result.output
    shutil.rmtree(assembled_root / "ave" / "AVE")
    (assembled_root / "ave" / "test_order.h5").unlink()
    result = CliRunner().invoke(app, ["data", "check", "ave", "--data-root", str(assembled_root), "--no-media"])
    assert result.exit_code == 1 and "cannot load" in result.output and "test_order.h5" in result.output
