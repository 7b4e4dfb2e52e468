"""`avbench data check` with split names it was given: an unknown one is a usage error, and the split
named by --media-split has its media checked even when --split does not list it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avbench.cli import app
from avbench.datacheck import check_task
from avbench.errors import UnknownNameError
from avbench.registry import get_task
from avbench.synthav import ensure_synthav


@pytest.fixture(scope="module")
def synth_root() -> Path:
    return ensure_synthav(seed=0, size="tiny")


@pytest.mark.parametrize("task", ["avvp", "avss", "arig", "ave"])
def test_an_unknown_split_is_a_usage_error_naming_the_valid_ones(synth_root: Path, task: str) -> None:
    # avvp used to crash with a bare KeyError; avss and arig reported the split "ok" with 0 samples.
    with pytest.raises(UnknownNameError, match="unknown split 'bogus'; valid splits: test, train, val"):
        check_task(get_task(task), synth_root, splits=["bogus"])
    result = CliRunner().invoke(app, ["data", "check", task, "--split", "bogus", "--data-root", str(synth_root)])
    assert result.exit_code == 2 and "unknown split 'bogus'" in result.output, result.output


def test_an_unknown_media_split_is_a_usage_error(synth_root: Path) -> None:
    result = CliRunner().invoke(app, ["data", "check", "ave", "--media-split", "tset", "--data-root", str(synth_root)])
    assert result.exit_code == 2 and "unknown split 'tset'" in result.output, result.output


def test_the_media_split_is_checked_even_when_split_does_not_list_it(synth_root: Path, tmp_path: Path) -> None:
    report = check_task(get_task("ave"), synth_root, splits=["train"], media_split="test")
    assert report.media_split == "test"
    assert report.n_media_samples == len(get_task("ave").load(synth_root, "test")) > 0
    assert [s.split for s in report.splits] == ["train", "test"] and not report.broken
    # A broken file of the media split is found (it used to be skipped silently, exit 0).
    sample = get_task("ave").load(synth_root, "test")[0]
    copy = tmp_path / "root"
    shutil.copytree(synth_root / "ave", copy / "ave")
    broken = Path(sample.media["video"].replace(str(synth_root), str(copy)))
    broken.write_bytes(b"not a video")
    result = CliRunner().invoke(app, ["data", "check", "ave", "--split", "train", "--media-split", "test",
                                      "--data-root", str(copy)])
    assert result.exit_code == 1 and "1 missing or undecodable" in result.output, result.output
    assert broken.name in result.output



def test_an_absent_media_split_is_an_error_not_a_warning(synth_root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "root"
    shutil.copytree(synth_root / "ave", copy / "ave")
    (copy / "ave" / "train_order.h5").unlink()
    # Without --media-split an absent train split is only a warning (a copy may hold the test split only) ...
    plain = check_task(get_task("ave"), copy)
    assert not plain.broken and plain.media_split == "test"
    assert any("ave/train: not in this copy" in w for w in plain.warnings())
    # ... but asked for its media, it must load: an error, not media silently left unchecked.
    report = check_task(get_task("ave"), copy, media_split="train")
    train = next(s for s in report.splits if s.split == "train")
    assert report.broken and train.error is not None and "train_order.h5" in train.error
    assert report.media_split is None
