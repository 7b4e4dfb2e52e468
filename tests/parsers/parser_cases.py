"""Hand-made samples for parser tests: parsing reads only a sample's frame count, so no data files are needed."""

from __future__ import annotations

from avbench.types import Sample


def ave_sample() -> Sample:
    return Sample("ave-1", "ave", "test", {}, target={"event": "Bark", "start": 2, "end": 6})


def avvp_sample() -> Sample:
    return Sample("avvp-1", "avvp", "test", {}, target={"weak": ["Dog"], "audio": {"Dog": [[2, 5]]}, "visual": {}})


def avqa_sample() -> Sample:
    return Sample("avqa-1", "music_avqa", "test", {}, inputs={"question": "How many instruments are sounding?"},
                  target={"answer": "two"}, meta={"type": "Audio/Counting"})


def arig_sample() -> Sample:
    return Sample("arig-1/0", "arig", "test", {}, target={"box": [20, 60, 39, 99]})


def frames_sample(task: str, n_frames: int) -> Sample:
    """A segmentation sample with `n_frames` frames (S4 / MS3: 5, Ref-AVS: 10)."""
    return Sample(f"{task}-1", task, "test", {"frames": [f"{i}.jpg" for i in range(n_frames)], "audio": "a.wav"},
                  target={"masks": [f"{i}.png" for i in range(n_frames)], "null": False, "mask_frames": list(range(n_frames))})


def avss_sample(n_real_frames: int = 5) -> Sample:
    return Sample("avss-1", "avss", "test", {"frames": [f"{i}.jpg" for i in range(n_real_frames)], "audio": "a.wav"},
                  target={"masks": [f"{i}.png" for i in range(n_real_frames)]}, meta={"n_real_frames": n_real_frames})
