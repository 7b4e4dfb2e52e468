"""Accepted release layouts (docs/data-layout.md), with small hand-written files: no avdata needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from avbench.cli import app
from avbench.data_versions import content_hash, records_hash
from avbench.datasets.layout import MediaIndex, dataset_folder
from avbench.errors import DataError
from avbench.registry import get_task
from avbench.synthav import ensure_synthav


def test_ave_text_split_file_and_one_root_per_data_set(tmp_path: Path) -> None:
    ave = tmp_path / "AVE_Dataset"  # the zip's folder name, passed directly as --data-root
    (ave / "AVE").mkdir(parents=True)
    (ave / "Annotations.txt").write_text("Category&VideoID&Quality&StartTime&EndTime\nBark&d1&good&2&5\n")
    (ave / "testSet.txt").write_text("Category&VideoID&Quality&StartTime&EndTime\nBark&d1&good&2&5\nClock&c1&good&0&10\n")
    (ave / "AVE" / "c1.mp4").write_bytes(b"")
    samples = get_task("ave").load(ave, "test")
    assert [(s.id, s.target["event"], s.meta["annotation_line"]) for s in samples] == [("d1", "Bark", 2), ("c1", "Clock", 3)]
    assert samples[1].media["video"] == str(ave / "AVE" / "c1.mp4")  # found in AVE/
    assert samples[0].media["video"] == str(ave / "videos" / "d1.mp4")  # not found: the conventional path
    (ave / "testSet.txt").write_text("Bark&d1&good&2&5\nClock&c1&good&0\n")
    with pytest.raises(DataError, match="5 '&'-separated") as info:
        get_task("ave").load(ave, "test")
    assert (info.value.path, info.value.line) == (str(ave / "testSet.txt"), 2)


def test_music_avqa_version_picks_the_sub_folder(tmp_path: Path) -> None:
    folder = tmp_path / "music_avqa" / "json"
    folder.mkdir(parents=True)
    (folder / "avqa-test.json").write_text('[{"video_id": "v", "question_id": 1, "type": "[\\"Audio\\", \\"Counting\\"]", '
                                           '"question_content": "How many <Object>?", "templ_values": "[\\"violins\\"]", '
                                           '"anser": "two"}]')
    with pytest.raises(DataError, match="updated version") as info:
        get_task("music_avqa").load(tmp_path, "test")  # default: json_update/
    assert info.value.path.endswith("json_update/avqa-test.json")
    [question] = get_task("music_avqa", version="original").load(tmp_path, "test")
    assert question.inputs["question"] == "How many violins?"
    with pytest.raises(Exception, match="valid MUSIC-AVQA question versions"):
        get_task("music_avqa", version="newest")


def test_media_index_prefers_folder_then_suffix_order(tmp_path: Path) -> None:
    for name in ("a/x.mp3", "a/x.wav", "b/x.wav", "b/y.flac"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    index = MediaIndex([tmp_path / "a", tmp_path / "b", tmp_path / "none"], (".wav", ".mp3", ".flac"))
    assert index.path("x") == str(tmp_path / "a" / "x.wav")
    assert index.path("y") == str(tmp_path / "b" / "y.flac")
    assert index.path("z") == str(tmp_path / "a" / "z.wav")
    assert dataset_folder(tmp_path, "ref_avs") == tmp_path / "ref_avs"  # nothing there: the conventional name


def test_content_hash_ignores_formatting_not_content(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    a.write_text("x\ty\n1\t2\n")
    b.write_bytes(b"\xef\xbb\xbfx\ty\r\n1\t2\r\n\r\n")
    c.write_text("x\ty\n1\t3\n")
    assert content_hash([a]) == content_hash([b]) != content_hash([c])
    assert records_hash(["r1", "r2"]) == records_hash(["r2", "r1"]) != records_hash(["r1"])


def test_data_check_on_synthav_is_clean(tmp_path: Path) -> None:
    root = ensure_synthav(seed=0, size="tiny", cache=tmp_path)
    result = CliRunner().invoke(app, ["data", "check", "ave,s4", "--data-root", str(root), "--decode", "--strict"])
    assert result.exit_code == 0, result.output
    assert "synthav-v2-tiny-seed0" in result.output and "all readable" in result.output
    # a corrupt frame of a test video is found and named, and the exit code says so
    test_uid = next(line.split(",")[1] for line in (root / "avsbench" / "metadata.csv").read_text().splitlines()
                    if line.endswith(",test,v1s"))
    frame = root / "avsbench" / "v1s" / test_uid / "frames" / "0.jpg"
    frame.write_bytes(b"garbage")
    result = CliRunner().invoke(app, ["data", "check", "s4", "--data-root", str(root)])
    assert result.exit_code == 1 and "1 missing or undecodable" in result.output
    assert "cannot open" in result.output and frame.name in result.output
