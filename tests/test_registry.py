"""Task and model registry: built-ins, groups, and third-party plugins through entry points."""

from __future__ import annotations

from pathlib import Path

import pytest

from avbench import registry
from avbench.errors import AVBenchError, ModelUnavailableError, UnknownNameError


def test_groups_follow_the_four_crab_families() -> None:
    assert registry.expand_tasks("temporal") == ["ave", "avvp"]
    assert registry.expand_tasks("spatial") == ["arig"]
    assert registry.expand_tasks("spatiotemporal") == ["music_avqa"]
    assert registry.expand_tasks("pixel") == ["s4", "ms3", "avss", "ref_avs"]
    assert registry.expand_tasks(" ave , ave,avvp") == ["ave", "avvp"]
    for name in registry.expand_tasks("all"):
        assert registry.task_class(name).family in registry.TASK_GROUPS
        assert name in registry.TASK_GROUPS[registry.task_class(name).family]


def test_unknown_and_unavailable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UnknownNameError, match="valid tasks: all, arig, ave, avss, avvp"):
        registry.expand_tasks("ave,nope")
    with pytest.raises(UnknownNameError):
        registry.expand_tasks(",")
    with pytest.raises(ModelUnavailableError, match="not available: weights withheld"):
        monkeypatch.setitem(registry.UNAVAILABLE_MODELS, "secret", "weights withheld")
        registry.get_model("secret")
    with pytest.raises(AVBenchError, match="does not take the options"):
        registry.get_task("ave", colour="red")


@pytest.fixture
def third_party_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed distribution (a .dist-info on sys.path) that declares a task and a model."""
    dist = tmp_path / "avbench_extra-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: avbench-extra\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[avbench.tasks]\nfake = fakes:FakeTask\n\n[avbench.models]\ngarbage = fakes:GarbageModel\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._entry_point_targets.cache_clear()
    yield
    registry._entry_point_targets.cache_clear()


def test_third_party_plugins_register_through_entry_points(third_party_plugin: None) -> None:
    assert "fake" in registry.task_names() and "garbage" in registry.model_names()
    assert registry.get_task("fake").name == "fake"
    assert registry.get_model("garbage", seed=1).seed == 1
    assert registry.expand_tasks("all")[-1] == "fake"
