"""Memory stays bounded: the pixel passes work a chunk of frames at a time, never thresholds x pixels.

The measured peaks (tracemalloc sees numpy's buffers) must be a few temporaries per pixel of one
chunk, and grow with the number of frames by less than 4 bytes per extra pixel: no array over the
whole stack wider than the input's own copy, and nothing per threshold or per class. (The AVSS pass's
per-frame `torch.bincount` output, 4 x 71^2 int64 = 161 KB, lives in torch's allocator, which
tracemalloc does not see; it is freed before the next frame's.)
"""

from __future__ import annotations

import tracemalloc

import numpy as np

from avbench.metrics.avss import FRAME_CHUNK as AVSS_CHUNK
from avbench.metrics.avss import avss_stats
from avbench.metrics.segmentation import F_BINS, FRAME_CHUNK, frame_stats

PIXELS = 224 * 224


def peak_bytes(fn, *args) -> int:
    tracemalloc.start()
    try:
        fn(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_fscore_memory_does_not_grow_with_thresholds_or_frames():
    rng = np.random.default_rng(0)
    n_frames = 4 * FRAME_CHUNK
    prob = rng.random((n_frames, 224, 224), dtype=np.float32)
    gt = rng.random((n_frames, 224, 224)) < 0.3
    peak = peak_bytes(frame_stats, prob, gt)
    # A thresholds x frames x pixels boolean array would take 255 * 128 * 50176 bytes = 1.6 GB.
    assert peak < F_BINS * n_frames * PIXELS / 50
    assert peak < 40 * FRAME_CHUNK * PIXELS
    half = peak_bytes(frame_stats, prob[: n_frames // 2], gt[: n_frames // 2])
    assert peak - half < 4 * (n_frames // 2) * PIXELS


def test_avss_memory_is_per_chunk_not_per_class():
    rng = np.random.default_rng(1)
    n_frames = 8 * AVSS_CHUNK
    pred = rng.integers(0, 71, (n_frames, 224, 224)).astype(np.uint8)
    gt = rng.integers(0, 71, (n_frames, 224, 224)).astype(np.uint8)
    avss_stats(pred[:1], gt[:1])  # the pass imports torch lazily: that import's allocations are not the pass's
    peak = peak_bytes(avss_stats, pred, gt)
    # 71 one-hot masks of all frames would be 71 * 128 * 50176 bytes = 456 MB.
    assert peak < 40 * AVSS_CHUNK * PIXELS
    half = peak_bytes(avss_stats, pred[: n_frames // 2], gt[: n_frames // 2])
    assert peak - half < 4 * (n_frames // 2) * PIXELS
