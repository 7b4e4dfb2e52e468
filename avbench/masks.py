"""On-disk and in-JSON forms of per-frame maps.

In predictions files a map is one of:
- binary mask: COCO RLE, `{"size": [h, w], "counts": "<compressed RLE>"}` (pycocotools);
- probability map: `{"size": [h, w], "prob_png": "<base64 8-bit PNG>"}`, value = round(p * 255) / 255;
- class-id map (AVSS): `{"size": [h, w], "labels_png": "<base64 8-bit PNG>"}`, pixel = class id.
pycocotools has no form for soft or multi-class maps; a lossless 8-bit PNG (Pillow) is the compact,
tool-readable choice for those.
"""

from __future__ import annotations

import base64
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

from .errors import DataError


def encode_binary(mask: np.ndarray) -> dict[str, Any]:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2-D, got shape {mask.shape}")
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": rle["counts"].decode("ascii")}


def _png_b64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8), mode="L").save(buffer, format="PNG", optimize=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _png_from_b64(text: str) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(base64.b64decode(text, validate=True))))


def encode_probability(prob: np.ndarray) -> dict[str, Any]:
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim != 2:
        raise ValueError(f"a probability map must be 2-D, got shape {prob.shape}")
    quantised = np.rint(np.clip(prob, 0.0, 1.0) * 255.0)
    return {"size": list(prob.shape), "prob_png": _png_b64(quantised)}


def encode_labels(labels: np.ndarray) -> dict[str, Any]:
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.min(initial=0) < 0 or labels.max(initial=0) > 255:
        raise ValueError("a class-id map must be 2-D with ids in 0..255")
    return {"size": list(labels.shape), "labels_png": _png_b64(labels)}


def encode_map(array: np.ndarray) -> dict[str, Any]:
    """Pick the form by dtype: bool -> RLE, float -> RLE if only {0, 1} else probability PNG, int -> labels."""
    array = np.asarray(array)
    if array.dtype == bool:
        return encode_binary(array)
    if np.issubdtype(array.dtype, np.floating):
        if np.isin(array, (0.0, 1.0)).all():
            return encode_binary(array > 0.5)
        return encode_probability(array)
    if np.issubdtype(array.dtype, np.integer):
        return encode_labels(array)
    raise ValueError(f"cannot encode a map of dtype {array.dtype}")


def decode_map(obj: Any) -> np.ndarray:
    """Inverse of `encode_map`: bool for RLE, float32 in [0, 1] for probabilities, int64 for labels."""
    if not isinstance(obj, dict) or "size" not in obj:
        raise ValueError("a map must be an object with 'size' and one of 'counts', 'prob_png', 'labels_png'")
    size = obj["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise ValueError(f"'size' must be [height, width], got {size!r}")
    if "counts" in obj:
        counts = obj["counts"]
        if isinstance(counts, list):  # uncompressed RLE, as COCO also allows
            rle = coco_mask.frPyObjects({"size": size, "counts": counts}, size[0], size[1])
        else:
            rle = {"size": size, "counts": str(counts).encode("ascii")}
        try:
            with warnings.catch_warnings():
                # pycocotools' Cython decoder trips numpy 2's __array__(copy=...) deprecation; the result is right.
                warnings.simplefilter("ignore", DeprecationWarning)
                decoded = coco_mask.decode(rle)
        except Exception as exc:  # pycocotools raises bare exceptions on bad strings
            raise ValueError(f"invalid COCO RLE: {exc}") from exc
        return decoded.astype(bool)
    for key, to_array in (("prob_png", lambda a: a.astype(np.float32) / 255.0), ("labels_png", lambda a: a.astype(np.int64))):
        if key in obj:
            try:
                array = _png_from_b64(obj[key])
            except Exception as exc:
                raise ValueError(f"invalid base64 PNG in {key!r}: {exc}") from exc
            if list(array.shape) != size:
                raise ValueError(f"{key} decodes to shape {list(array.shape)} but 'size' says {size}")
            return to_array(array)
    raise ValueError("a map needs one of 'counts', 'prob_png', 'labels_png'")


def read_png(path: str | Path) -> np.ndarray:
    """A mask image as an array (H x W, or H x W x 3 for RGB), with a clear error for a broken file."""
    try:
        with Image.open(path) as image:
            if image.mode not in ("1", "L", "P", "RGB", "RGBA", "I", "I;16"):
                image = image.convert("RGB")
            if image.mode == "RGBA":
                image = image.convert("RGB")
            return np.array(image)
    except FileNotFoundError:
        raise DataError("mask file not found", path) from None
    except OSError as exc:
        raise DataError(f"cannot decode mask image ({exc})", path) from None


def read_binary_mask(path: str | Path) -> np.ndarray:
    """Foreground = any non-zero value (binary PNGs store 255 or 1; RGB palette masks a non-black colour)."""
    array = read_png(path)
    return array.any(axis=-1) if array.ndim == 3 else array > 0


def avsbench_palette(num_classes: int = 71) -> np.ndarray:
    """The AVSBench(-semantic) colour of each class id (PASCAL-VOC bit palette): shape (num_classes, 3).

    Class j takes its id's bits three at a time (bit 0 -> red, 1 -> green, 2 -> blue), filling each
    channel from its most significant bit down; id 0 is black (background).
    """
    ids = np.arange(num_classes)
    palette = np.zeros((num_classes, 3), dtype=np.uint8)
    for level in range(8):
        for channel in range(3):
            palette[:, channel] |= (((ids >> (3 * level + channel)) & 1) << (7 - level)).astype(np.uint8)
    return palette


def rgb_to_class_ids(rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """RGB palette mask -> class-id map. A colour not in the palette maps to 0, as in the official loader."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an H x W x 3 RGB mask, got shape {rgb.shape}")
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    palette_codes = (palette[:, 0].astype(np.int64) << 16) | (palette[:, 1].astype(np.int64) << 8) | palette[:, 2]
    order = np.argsort(palette_codes, kind="stable")
    sorted_codes = palette_codes[order]
    position = np.clip(np.searchsorted(sorted_codes, codes), 0, len(sorted_codes) - 1)
    return np.where(sorted_codes[position] == codes, order[position], 0).astype(np.int64)


def class_ids_to_rgb(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    return palette[np.asarray(labels)]
