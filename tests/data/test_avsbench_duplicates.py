"""S4/MS3 refuse a uid listed twice in a split, naming the metadata file they read (whatever folder holds it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avbench.errors import DataError
from avbench.registry import get_task

from avsbench_tree import write_metadata, write_video


def test_a_duplicate_uid_names_the_metadata_file_that_was_read(tmp_path: Path) -> None:
    mask = np.zeros((16, 16), np.uint8)
    mask[4:8, 4:8] = 1
    write_video(tmp_path, "v1s", "a_1", {i: mask for i in range(5)})
    write_metadata(tmp_path, [("a_1", "test", "v1s"), ("a_1", "test", "v1s")])
    # --data-root pointing at the AVSBench folder itself (one root per data set, docs/data-layout.md)
    own_root = tmp_path / "avsbench"
    with pytest.raises(DataError, match="duplicate uid 'a_1'") as info:
        get_task("s4").load(own_root, "test")
    assert info.value.path == str(own_root / "metadata.csv")  # used to name <root>/avsbench/metadata.csv
