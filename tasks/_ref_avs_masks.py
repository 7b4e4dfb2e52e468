"""Ground-truth masks as the official Ref-AVS loader sees them (GeWu-Lab/Ref-AVS `datasets/dataset_refavs.py`).

`REFAVS.__getitem__` reads each mask with `cv2.imread(path)` (8-bit, 3 channels, BGR), resizes it with
`cv2.resize(mask, (256, 256))` (default interpolation: INTER_LINEAR on uint8), converts it with
`cv2.COLOR_BGR2GRAY` and keeps `gray > 0` as foreground. Bilinear weights spread a foreground pixel onto
its neighbours, and any output value >= 1 counts, so the official masks are slightly dilated; where a
neighbour's weight is tiny the uint8 rounding decides, so the fixed-point arithmetic matters.

OpenCV is not in avbench's stack (and this is the only place that would need it), so its arithmetic is
restated here in numpy from opencv-python 4.10 (the version the official environment pins),
`modules/imgproc/src/resize.cpp`, generic `INTER_LINEAR` path for 8-bit images:
- scale = 1 / (dst / src) in float64; per output index d: f = float32((d + 0.5) * scale - 0.5),
  s = floor(f), f -= s; weights (1 - f, f) in float32 times 2048, rounded half-to-even to int16;
- columns: when s < 0 or s >= src - 1 the index is clamped and the weight set to (2048, 0);
  rows: only the two row indices are clamped to the image, the weights stay as computed;
- horizontal pass: exact integers h = a0 * S[x0] + a1 * S[x1];
- vertical pass as the SIMD kernel `VResizeLinearVec_32s8u` (taken on x86 and ARM for every 16-aligned
  row of 16 values: here 3 x 256 channels, so every pixel): ((h0 >> 4) * b0 >> 16) + ((h1 >> 4) * b1
  >> 16), then (x + 2) >> 2 saturated to 0..255. (The scalar fallback (h0 b0 + h1 b1 + 2^21) >> 22
  differs from it by 1 in rare pixels but never on the > 0 decision for 0/255 masks: checked on
  random blob masks of several sizes, 2.3 M output pixels.)
- an exact 2x downscale in both directions takes OpenCV's INTER_AREA fast path, (sum of 2 x 2 + 2) >> 2;
  an unchanged size is a copy.
BGR2GRAY on 8 bits is (4899 R + 9617 G + 1868 B + 8192) >> 14 (equal channels map to themselves).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image

from avbench.errors import DataError

#: Side of the square the official Ref-AVS loader, model post-processing and test loop all use.
OFFICIAL_SIZE = 256
_COEF_SCALE = 2048  # INTER_RESIZE_COEF_SCALE (11 fractional bits)


@functools.lru_cache(maxsize=64)
def _taps(src: int, dst: int, clamp_weights: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV's INTER_LINEAR taps along one axis: (index0, index1, weight0, weight1), int64, weights x 2048."""
    scale = 1.0 / (dst / src)
    f = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f).astype(np.int64)
    f = (f - s.astype(np.float32)).astype(np.float32)
    if clamp_weights:  # columns: out-of-range positions take the border pixel with weight (1, 0)
        outside_low, outside_high = s < 0, s >= src - 1
        f[outside_low | outside_high] = 0.0
        s = np.where(outside_low, 0, np.where(outside_high, src - 1, s))
    w0 = np.rint((np.float32(1.0) - f) * np.float32(_COEF_SCALE)).astype(np.int64)
    w1 = np.rint(f * np.float32(_COEF_SCALE)).astype(np.int64)
    return np.clip(s, 0, src - 1), np.clip(s + 1, 0, src - 1), w0, w1


def cv2_resize_linear_u8(image: np.ndarray, size: int) -> np.ndarray:
    """`cv2.resize(image, (size, size))` (INTER_LINEAR) of a uint8 (H, W) or (H, W, C) image, as uint8."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return image.copy()
    pixels = image.astype(np.int64)
    if height == 2 * size and width == 2 * size:  # OpenCV swaps in INTER_AREA for exact halving
        total = pixels[0::2, 0::2] + pixels[0::2, 1::2] + pixels[1::2, 0::2] + pixels[1::2, 1::2]
        return ((total + 2) >> 2).astype(np.uint8)
    x0, x1, a0, a1 = _taps(width, size, True)
    y0, y1, b0, b1 = _taps(height, size, False)
    extra = (1,) * (image.ndim - 2)  # broadcast the weights over channels
    rows = pixels[:, x0] * a0.reshape(-1, *extra) + pixels[:, x1] * a1.reshape(-1, *extra)
    b0, b1 = b0.reshape(-1, 1, *extra), b1.reshape(-1, 1, *extra)
    mixed = (((rows[y0] >> 4) * b0) >> 16) + (((rows[y1] >> 4) * b1) >> 16)
    return np.clip((mixed + 2) >> 2, 0, 255).astype(np.uint8)


def bgr_to_gray_u8(rgb: np.ndarray) -> np.ndarray:
    """`cv2.cvtColor(bgr, COLOR_BGR2GRAY)` of an 8-bit image given in RGB channel order."""
    rgb = rgb.astype(np.int64)
    return ((4899 * rgb[..., 0] + 9617 * rgb[..., 1] + 1868 * rgb[..., 2] + 8192) >> 14).astype(np.uint8)


def imread_color_u8(path: str | Path) -> np.ndarray:
    """The pixels `cv2.imread(path)` (IMREAD_COLOR) yields, as uint8: (H, W) for a grey file (cv2's three
    equal channels carry the same values through resize and grey conversion), else (H, W, 3) in RGB
    order. 1-bit files read as 0/255, 16-bit ones keep their high byte, alpha is dropped, palettes expand."""
    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode in ("P", "PA", "RGBA", "CMYK", "YCbCr"):
                return np.asarray(image.convert("RGB"), dtype=np.uint8)
            array = np.asarray(image)
    except FileNotFoundError:
        raise DataError("mask file not found", path) from None
    except OSError as exc:
        raise DataError(f"cannot decode mask image ({exc})", path) from None
    if mode == "1":
        return array.astype(np.uint8) * 255
    if mode == "L" or mode == "RGB":
        return array.astype(np.uint8)
    if mode == "LA":
        return array[..., 0].astype(np.uint8)
    if mode in ("I;16", "I;16B", "I"):
        if array.min(initial=0) < 0 or array.max(initial=0) > 65535:
            raise DataError(f"mask values outside 16 bits (mode {mode})", path)
        return (array.astype(np.int64) >> 8).astype(np.uint8)
    raise DataError(f"unsupported mask image mode {mode!r}", path)


def read_official_mask(path: str | Path, size: int = OFFICIAL_SIZE) -> np.ndarray:
    """A ground-truth mask as the official Ref-AVS loader makes it: (size, size) bool."""
    image = cv2_resize_linear_u8(imread_color_u8(path), size)
    gray = image if image.ndim == 2 else bgr_to_gray_u8(image)
    return gray > 0
