"""A media-reading fake task and adapter: the runner's decode path, tested without a real model.

Data: `<root>/fake/{train,test}.tsv` (tests/fakes.py) plus, per test sample, `<root>/fake/media/<id>.mp4`
(a few frames of one solid colour: the answer) and `<id>.wav` (a 440 Hz tone, 48 kHz stereo, so
decoding resamples and downmixes). The adapter answers from the decoded frames alone, so its
accuracy is 100% only if every sample received its own media.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from avbench.adapter import ModelAdapter
from avbench.media import DecodedMedia, MediaSpec
from avbench.synthav.media import write_mp4
from avbench.task import Task
from avbench.types import ModelOutput, Sample

from fakes import ANSWERS, FakeTask, write_fake_data

COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
FRAMES_PER_CLIP = 6
AUDIO_RATE = 48000


class MediaFakeTask(FakeTask):
    """FakeTask whose samples carry a video and an audio file."""

    name = "fake"

    def load(self, data_root: Path, split: str) -> list[Sample]:
        media = Path(data_root) / "fake" / "media"
        return [
            Sample(s.id, s.task, s.split, {"video": str(media / f"{s.id}.mp4"), "audio": str(media / f"{s.id}.wav")},
                   s.inputs, s.target)
            for s in super().load(data_root, split)
        ]


class ColourModel(ModelAdapter):
    """Names the colour of the decoded frames; records what it was given."""

    name = "colour"
    media_spec = MediaSpec(n_frames=3, frame_size=32, sample_rate=16000, audio_seconds=1.0)

    def __init__(self, seed: int = 0, **options: Any):
        super().__init__(seed, **options)
        self.seen: list[str] = []
        self.media: list[DecodedMedia] = []

    def predict(self, task: Task, samples: Sequence[Sample], prompts: Sequence[str],
                media: Sequence[DecodedMedia] | None = None) -> list[ModelOutput]:
        assert media is not None and len(media) == len(samples)
        outputs = []
        for sample, item in zip(samples, media):
            self.seen.append(sample.id)
            self.media.append(item)
            channel = int(np.argmax(item.frames.reshape(-1, 3).mean(axis=0)))
            outputs.append(ModelOutput(f"<answer>{ANSWERS[channel]}</answer>"))
        return outputs


def write_tone(path: Path, seconds: float = 1.0, rate: int = AUDIO_RATE) -> None:
    """A 440 Hz tone at amplitude 0.5 in the left channel, silence in the right (16-bit PCM)."""
    t = np.arange(int(seconds * rate)) / rate
    left = np.round(0.5 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(stereo.tobytes())


def write_clip(folder: Path, sample_id: str, colour: str) -> None:
    frames = np.broadcast_to(np.array(COLOURS[colour], np.uint8), (FRAMES_PER_CLIP, 48, 48, 3))
    write_mp4(folder / f"{sample_id}.mp4", np.ascontiguousarray(frames), fps=6)
    write_tone(folder / f"{sample_id}.wav")


def write_media_data(root: Path, n_test: int = 10) -> Path:
    write_fake_data(root, n_test=n_test)
    folder = root / "fake" / "media"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_test):
        write_clip(folder, f"t{i:03d}", ANSWERS[i % 3])
    return root
