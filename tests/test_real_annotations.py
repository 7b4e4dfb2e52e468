"""The runner end to end on the real annotation files (../shared/avdata): the oracle reaches the maximum."""

from __future__ import annotations

from pathlib import Path

import pytest

from avbench.registry import get_model
from avbench.runner import RunConfig, run


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
