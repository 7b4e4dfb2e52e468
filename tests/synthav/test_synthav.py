"""SynthAV: determinism, the release layouts, and labels that agree with the scene ground truth."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any

import av
import h5py
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import avbench.synthav as synthav
from avbench.masks import avsbench_palette, rgb_to_class_ids
from avbench.synthav import SIZES, SYNTHAV_VERSION, ensure_synthav, generate, synthav_root
from avbench.synthav import ave as ave_gen
from avbench.synthav import sound
from avbench.vocab import AVE_EVENTS, AVQA_ANSWERS, AVQA_QUESTION_TYPES, AVSS_CLASSES, LLP_CLASSES


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---- determinism -----------------------------------------------------------------------------------
def test_same_seed_gives_identical_bytes_and_another_seed_differs(tiny_root: Path, tmp_path: Path) -> None:
    generate(tmp_path / "again", 0, "tiny")
    first, again = _files(tiny_root), _files(tmp_path / "again")
    assert sorted(first) == sorted(again)
    assert [name for name in first if first[name] != again[name]] == []

    generate(tmp_path / "seed1", 1, "tiny")
    other = _files(tmp_path / "seed1")
    for name in ("ave/Annotations.txt", "avvp/AVVP_test_pd.csv", "music_avqa/avqa-test.json",
                 "avsbench/metadata.csv", "ref_avs/metadata.csv"):
        assert other[name] != first[name], name


def test_api_constants_and_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert SYNTHAV_VERSION == "2" and SIZES[:2] == ("tiny", "small")
    monkeypatch.setenv("AVBENCH_CACHE", str(tmp_path / "c"))
    assert synthav.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("AVBENCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert synthav.cache_dir() == tmp_path / "x" / "avbench"
    root = synthav_root(3, "small", cache=tmp_path)
    assert root.parent == tmp_path and not root.exists()  # no generation
    assert synthav_root(3, "small", cache=tmp_path) != synthav_root(4, "small", cache=tmp_path)
    with pytest.raises(ValueError, match="unknown SynthAV size"):
        synthav_root(0, "huge")


# ---- ensure_synthav -----------------------------------------------------------------------------------
def test_second_call_returns_without_generating(tiny_root: Path, tiny_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = tiny_root / "synthav.json"
    before = manifest.stat().st_mtime_ns

    def must_not_run(*args: Any) -> None:
        raise AssertionError("regenerated")

    monkeypatch.setattr(synthav, "generate", must_not_run)
    assert ensure_synthav(seed=0, size="tiny", cache=tiny_cache) == tiny_root
    assert manifest.stat().st_mtime_ns == before


def test_killed_runs_are_never_taken_for_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []

    def fake_generate(root: Path, seed: int, size: str, progress=None) -> None:
        calls.append(root)
        (root / "ave").mkdir()
        (root / "synthav.json").write_text(json.dumps({"version": SYNTHAV_VERSION, "seed": seed, "size": size}))

    monkeypatch.setattr(synthav, "generate", fake_generate)
    root = synthav_root(5, "tiny", cache=tmp_path)
    # a killed run left a temp sibling (an hour old) and someone left a root without its manifest
    stale = tmp_path / f".tmp-{root.name}-killed"
    (stale / "ave").mkdir(parents=True)
    old = time.time() - 7200
    os.utime(stale, (old, old))
    young = tmp_path / f".tmp-{root.name}-running"
    young.mkdir()
    (root / "ave").mkdir(parents=True)
    (root / "ave" / "Annotations.txt").write_text("half")

    messages: list[str] = []
    assert ensure_synthav(seed=5, size="tiny", cache=tmp_path, progress=messages.append) == root
    assert len(calls) == 1 and calls[0] != root  # generated into a temp sibling, then renamed
    assert json.loads((root / "synthav.json").read_text())["seed"] == 5
    assert not (root / "ave" / "Annotations.txt").exists()
    assert not stale.exists() and young.exists()  # a young temp may be a run in progress
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp") and p != young] == []
    assert messages and "generating" in messages[0]
    assert ensure_synthav(seed=5, size="tiny", cache=tmp_path) == root and len(calls) == 1


# ---- layout: AVE ------------------------------------------------------------------------------------
def _wav(path: Path, seconds: int) -> np.ndarray:
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (16000, 1, "PCM_16", seconds * 16000)
    return sf.read(str(path), dtype="float64")[0]


def _mp4_duration(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        return frames / float(stream.average_rate)


def test_ave_layout(tiny_root: Path, truth: dict[str, Any]) -> None:
    ave = tiny_root / "ave"
    lines = (ave / "Annotations.txt").read_text(encoding="utf-8").splitlines()
    rows = [line.split("&") for line in lines]
    assert all(len(r) == 5 for r in rows) and rows[0][0] in AVE_EVENTS  # no header line
    for category, vid, quality, start, end in rows:
        assert category in AVE_EVENTS and quality == "good" and 0 <= int(start) < int(end) <= 10
        assert (ave / "videos" / f"{vid}.mp4").is_file()
    seen: list[int] = []
    for split in ("train", "val", "test"):
        with h5py.File(ave / f"{split}_order.h5", "r") as handle:
            order = handle["order"][()]
        assert order.dtype == np.int64 and order.ndim == 1 and len(order) > 0
        assert all(truth["ave"]["videos"][rows[i][1]]["split"] == split for i in order)
        seen.extend(order.tolist())
    assert sorted(seen) == list(range(len(rows)))
    vid = rows[0][1]
    assert abs(_mp4_duration(ave / "videos" / f"{vid}.mp4") - 10.0) < 0.01
    _wav(ave / "audios" / f"{vid}.wav", 10)


def test_ave_labels_are_exactly_the_audio_visual_segments(tiny_root: Path, truth: dict[str, Any]) -> None:
    for line in (tiny_root / "ave" / "Annotations.txt").read_text().splitlines():
        category, vid, _, start, end = line.split("&")
        segments = truth["ave"]["videos"][vid]["segments"]
        both = [s for s, seg in enumerate(segments)
                if category in seg["audible"] and category in {v["class"] for v in seg["visible"]}]
        assert both == list(range(int(start), int(end)))
        for seg in segments:  # no other class is ever seen and heard at once
            assert {v["class"] for v in seg["visible"]} & set(seg["audible"]) <= {category}
        # and outside the event each modality alone shows something in some videos (distractors)


def test_ave_media_show_what_the_truth_says(tiny_root: Path, truth: dict[str, Any]) -> None:
    """The class's timbre is in the audio exactly on its audible seconds, its colour in its boxes."""
    from avbench.synthav import look

    for vid, video in truth["ave"]["videos"].items():
        audio = _wav(tiny_root / "ave" / "audios" / f"{vid}.wav", 10)
        with av.open(str(tiny_root / "ave" / "videos" / f"{vid}.mp4")) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        for name in ave_gen.CLASSES:
            key = AVE_EVENTS.index(name)
            template = sound.timbre(key)
            colour = look.COLOURS[(key // 7) % 10].astype(int)
            for s, seg in enumerate(video["segments"]):
                # projection on the class's one-second timbre ~ its gain (0.3) when audible, ~0 else
                weight = float(audio[s * 16000:(s + 1) * 16000] @ template / (template @ template))
                assert (weight > ave_gen.GAIN / 2) == (name in seg["audible"]), (vid, name, s, weight)
                boxes = [v["box"] for v in seg["visible"] if v["class"] == name]
                for box in boxes:
                    x0, y0, x1, y1 = box
                    patch = frames[s * ave_gen.FPS + 1][y0:y1, x0:x1].astype(int)
                    close = (np.abs(patch - colour).sum(axis=-1) < 90).mean()
                    assert close > 0.2, (vid, name, s, close)


# ---- layout and truth: AVVP --------------------------------------------------------------------------
def _tsv(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def test_avvp_files_and_dense_rows_match_the_scene(tiny_root: Path, truth: dict[str, Any]) -> None:
    avvp = tiny_root / "avvp"
    videos = truth["avvp"]["videos"]
    for split, name in (("train", "AVVP_train.csv"), ("val", "AVVP_val_pd.csv"), ("test", "AVVP_test_pd.csv")):
        header, rows = _tsv(avvp / name)
        assert header == ["filename", "event_labels"] and rows
        for filename, labels in rows:
            yt, start, end = filename.rsplit("_", 2)
            assert len(yt) == 11 and int(end) - int(start) == 10 and videos[filename]["split"] == split
            assert all(label in LLP_CLASSES for label in labels.split(","))
            assert set(labels.split(",")) == set(videos[filename]["labels"])
            assert (avvp / "videos" / f"{filename}.mp4").is_file() and (avvp / "audios" / f"{filename}.wav").is_file()
    for modality, field in (("audio", "audible"), ("visual", "visible")):
        header, rows = _tsv(avvp / f"AVVP_eval_{modality}.csv")
        assert header == ["filename", "onset", "offset", "event_labels"]
        got = sorted((f, int(on), int(off), c) for f, on, off, c in rows)
        expected = []
        for filename, video in videos.items():
            if video["split"] == "train":
                continue
            for cls in video["labels"]:
                flags = [cls in (seg[field] if field == "audible" else {v["class"] for v in seg[field]})
                         for seg in video["segments"]]
                # maximal runs: a hole splits an event in two rows
                edges = [i for i in range(11) if (i < 10 and flags[i]) != (i > 0 and flags[i - 1])]
                expected += [(filename, edges[k], edges[k + 1], cls) for k in range(0, len(edges), 2)]
        assert got == sorted(expected)


# ---- layout and truth: MUSIC-AVQA -------------------------------------------------------------------
def test_music_avqa_json_like_the_release(tiny_root: Path, truth: dict[str, Any]) -> None:
    ids: set[int] = set()
    for split in ("train", "val", "test"):
        raw = (tiny_root / "music_avqa" / f"avqa-{split}.json").read_text(encoding="utf-8")
        questions = json.loads(raw)
        assert raw == json.dumps(questions, indent=2)  # the release's formatting
        subtypes = set()
        for q in questions:
            assert list(q) == ["video_id", "question_id", "type", "question_content", "templ_values",
                               "question_deleted", "anser"]
            assert isinstance(q["question_id"], int) and q["question_id"] not in ids
            ids.add(q["question_id"])
            kind, values = json.loads(q["type"]), json.loads(q["templ_values"])
            assert isinstance(q["type"], str) and isinstance(q["templ_values"], str)
            assert q["question_deleted"] == 0 and q["anser"] in AVQA_ANSWERS
            assert q["question_content"].count("<") == len(values)
            subtypes.add("/".join(kind))
            recorded = truth["music_avqa"]["questions"][str(q["question_id"])]
            assert recorded["answer"] == q["anser"] and recorded["templ_values"] == values
            assert (tiny_root / "music_avqa" / "videos" / f"{q['video_id']}.mp4").is_file()
        assert subtypes == set(AVQA_QUESTION_TYPES), split
    video = next(iter(truth["music_avqa"]["videos"]))
    assert abs(_mp4_duration(tiny_root / "music_avqa" / "videos" / f"{video}.mp4") - 10.0) < 0.01
    _wav(tiny_root / "music_avqa" / "audios" / f"{video}.wav", 10)


# ---- layout and truth: AVSBench ---------------------------------------------------------------------
def test_avsbench_layout_masks_and_class_coverage(tiny_root: Path, truth: dict[str, Any]) -> None:
    root = tiny_root / "avsbench"
    with (root / "metadata.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["vid", "uid", "s_min", "s_sec", "a_obj", "split", "label"]
        rows = list(reader)
    palette = avsbench_palette(len(AVSS_CLASSES))
    test_sounding: set[int] = set()
    assert {(r["label"], r["split"]) for r in rows} == {(s, p) for s in ("v1s", "v1m", "v2") for p in ("train", "val", "test")}
    for row in rows:
        folder = root / row["label"] / row["uid"]
        n = 10 if row["label"] == "v2" else 5
        frames = truth["avsbench"]["videos"][row["uid"]]["frames"]
        assert sorted(p.name for p in (folder / "frames").iterdir()) == sorted(f"{i}.jpg" for i in range(n))
        only_first = row["label"] == "v1s" and row["split"] == "train"
        expected_masks = ["0.png"] if only_first else sorted(f"{i}.png" for i in range(n))
        assert sorted(p.name for p in (folder / "labels_rgb").iterdir()) == expected_masks
        _wav(folder / "audio.wav", n)
        for i in range(1 if only_first else n):
            with Image.open(folder / "labels_rgb" / f"{i}.png") as image:
                assert image.mode == "RGB" and image.size == (224, 224)
                ids = rgb_to_class_ids(np.array(image), palette)
            expected = {AVSS_CLASSES.index(c) for c in frames[i]["sounding"]}
            assert set(np.unique(ids).tolist()) - {0} == expected
            if row["split"] == "test":
                test_sounding |= expected
        with Image.open(folder / "frames" / "0.jpg") as image:
            assert image.size == (224, 224)
    # a perfect AVSS prediction must reach 100: every foreground class sounds in some test frame
    assert test_sounding == set(range(1, len(AVSS_CLASSES)))


def test_s4_distractors_are_silent_objects_of_other_classes(truth: dict[str, Any]) -> None:
    for video in truth["avsbench"]["videos"].values():
        if video["subset"] == "v1s":
            visible = {v["class"] for v in video["frames"][0]["visible"]}
            assert all(len(f["sounding"]) == 1 and f["sounding"][0] in visible for f in video["frames"])


# ---- layout and truth: Ref-AVS ------------------------------------------------------------------------
def test_ref_avs_layout_null_masks_and_unseen_classes(tiny_root: Path, truth: dict[str, Any]) -> None:
    root = tiny_root / "ref_avs"
    raw = (root / "metadata.csv").read_bytes()
    assert raw.startswith(b"vid,uid,split,fid,exp\r\n")
    with (root / "metadata.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["split"] for r in rows} == {"train", "val", "test_s", "test_u", "test_n"}
    train_clips = list(dict.fromkeys(r["vid"] for r in rows if r["split"] == "train"))
    assert [any(r["uid"].startswith("null_") for r in rows if r["vid"] == vid) for vid in train_clips] == [False, True]
    clips = truth["ref_avs"]["clips"]
    classes_in = {split: {o["class"] for c in clips.values() if c["split"] == split for o in c["objects"]}
                  for split in ("train", "test_u")}
    assert classes_in["test_u"] and not classes_in["test_u"] & classes_in["train"]
    for row in rows:
        masks = root / "gt_mask" / row["vid"] / f"fid_{row['fid']}"
        assert sorted(p.name for p in masks.iterdir()) == [f"{k:05d}.png" for k in range(10)]
        assert sorted(p.name for p in (root / "media" / row["vid"] / "frames").iterdir()) == sorted(f"{k}.jpg" for k in range(10))
        _wav(root / "media" / row["vid"] / "audio.wav", 10)
        stack = np.stack([np.array(Image.open(masks / f"{k:05d}.png")) for k in range(10)])
        assert set(np.unique(stack).tolist()) <= {0, 255}
        expression = truth["ref_avs"]["expressions"][row["uid"]]
        if row["split"] == "test_n" or row["uid"].startswith("null_"):  # null clips: all of test_n, one train clip in 4
            assert row["uid"].startswith("null_") and row["split"] in ("test_n", "train") and not stack.any()
            assert expression["referent"] is None
            assert not any(o["sounding"] and not o["offscreen"] for o in clips[row["vid"]]["objects"])
        else:
            referent = clips[row["vid"]]["objects"][int(row["fid"])]
            assert row["uid"].startswith(f"{row['vid']}_{referent['class']}_")
            for k in range(10):  # the mask covers the referent's box and nothing outside it
                x0, y0, x1, y1 = referent["boxes"][k]
                assert stack[k, y0:y1, x0:x1].any() and stack[k].sum() == stack[k, y0:y1, x0:x1].sum()
            assert expression["referent"] == int(row["fid"])
