"""Map encodings of the predictions file and the AVSBench palette."""

from __future__ import annotations

import numpy as np
import pytest

from avbench.masks import avsbench_palette, class_ids_to_rgb, decode_map, encode_map, rgb_to_class_ids


def test_binary_masks_round_trip_as_coco_rle() -> None:
    mask = np.zeros((5, 7), dtype=bool)
    mask[1:3, 2:5] = True
    encoded = encode_map(mask)
    # column-major runs: 11 background, then for columns 2..4: 2 fg, 3 bg ... pycocotools' compressed string
    assert set(encoded) == {"size", "counts"} and encoded["size"] == [5, 7]
    assert (decode_map(encoded) == mask).all()
    assert (decode_map(encode_map(mask.astype(np.float32))) == mask).all()  # a 0/1 float map is binary
    assert (decode_map({"size": [5, 7], "counts": [11, 2, 3, 2, 3, 2, 12]}) == mask).all()  # uncompressed RLE


def test_probability_maps_keep_8_bits() -> None:
    prob = np.linspace(0.0, 1.0, 24).reshape(4, 6)
    decoded = decode_map(encode_map(prob))
    assert decoded.dtype == np.float32
    assert np.abs(decoded - prob).max() <= 0.5 / 255 + 1e-7


def test_class_id_maps_round_trip() -> None:
    labels = np.arange(70).reshape(7, 10) % 71
    assert (decode_map(encode_map(labels)) == labels).all()


@pytest.mark.parametrize(
    "obj, message",
    [
        ([1, 2], "must be an object"),
        ({"size": [5], "counts": "x"}, "'size' must be"),
        ({"size": [5, 7]}, "needs one of"),
        ({"size": [2, 2], "prob_png": "not base64!"}, "invalid base64 PNG"),
        ({"size": [3, 3], "labels_png": encode_map(np.zeros((2, 2), dtype=np.int64))["labels_png"]}, "decodes to shape"),
    ],
)
def test_bad_maps_are_clear_errors(obj, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_map(obj)


def test_palette_matches_the_voc_bit_layout() -> None:
    palette = avsbench_palette(71)
    # id 1 -> bit0 -> red 128; id 2 -> green 128; id 8 = 0b001000 -> red bit at level 1 -> 64.
    assert palette[0].tolist() == [0, 0, 0] and palette[1].tolist() == [128, 0, 0]
    assert palette[2].tolist() == [0, 128, 0] and palette[8].tolist() == [64, 0, 0]
    # id 14 = 0b001110: level 0 bits (0,1,1) -> (0,128,128), level 1 bit0 -> red 64.
    assert palette[14].tolist() == [64, 128, 128]
    assert len({tuple(c) for c in palette}) == 71


def test_rgb_to_class_ids_maps_unknown_colours_to_background() -> None:
    palette = avsbench_palette(71)
    labels = np.array([[0, 14, 70], [3, 3, 1]])
    rgb = class_ids_to_rgb(labels, palette)
    rgb[1, 2] = [1, 2, 3]  # not a palette colour
    assert rgb_to_class_ids(rgb, palette).tolist() == [[0, 14, 70], [3, 3, 0]]
