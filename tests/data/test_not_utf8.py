"""An annotation file that is not UTF-8 (say, re-saved as Latin-1 by a spreadsheet) is a DataError naming
the file and the line of the first bad byte, not a bare UnicodeDecodeError."""

from __future__ import annotations

from pathlib import Path

import pytest

from avbench.datasets.ave import read_rows
from avbench.errors import DataError
from avbench.registry import get_task

# (file under the data root, its lines; line 3 holds an e-acute in Latin-1, byte 0xE9)
FILES = {
    "ave": ("ave/Annotations.txt", ["Church bell&abc&good&0&10", "Church bell&bcd&good&0&10", "Church bell&d\xe9f&good&0&10"]),
    "avvp": ("avvp/AVVP_test_pd.csv", ["filename\tevent_labels", "a_0_10\tSpeech", "caf\xe9_0_10\tSpeech"]),
    "s4": ("avsbench/metadata.csv", ["vid,uid,s_min,s_sec,a_obj,split,label", "a,a_1,0,0,dog,test,v1s",
                                     "b,b_1,0,0,caf\xe9,test,v1s"]),
    "ref_avs": ("ref_avs/metadata.csv", ["vid,uid,split,fid,exp", "a,a_dog_1,test_s,1,the dog",
                                         "b,b_cat_1,test_s,1,the caf\xe9 cat"]),
}


@pytest.mark.parametrize("task", sorted(FILES))
def test_a_latin1_annotation_file_names_file_and_line(tmp_path: Path, task: str) -> None:
    relative, lines = FILES[task]
    path = tmp_path / relative
    path.parent.mkdir(parents=True)
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    with pytest.raises(DataError, match="not utf-8") as info:
        if task == "ave":
            read_rows(path)
        else:
            get_task(task).load(tmp_path, "test")
    assert (info.value.path, info.value.line) == (str(path), 3)


def test_an_image_too_large_to_decode_is_a_media_error_naming_it(tmp_path, monkeypatch) -> None:
    from PIL import Image

    from avbench.media import MediaError, load_image

    path = tmp_path / "huge.png"
    Image.new("RGB", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64 x 64 = 4,096 > 2 x 100: Pillow refuses it
    with pytest.raises(MediaError, match="huge.png"):
        load_image(path, 32)
