"""Byte-deterministic media writers: H.264 mp4 (PyAV, one thread, bitexact), 16-bit PCM wav, JPEG, PNG.

Same input -> same bytes, on every run: the encoder runs single-threaded with the bitexact flags
(so no version strings or timestamps vary), the wav header is the stdlib's fixed 44 bytes, and
JPEG/PNG use fixed settings.
"""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np
from PIL import Image

from .sound import SAMPLE_RATE

JPEG_QUALITY = 90
_ID_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))


def write_mp4(path: Path, frames: np.ndarray, fps: int) -> None:
    """frames: (N, H, W, 3) uint8 RGB -> H.264 (yuv420p) mp4 without an audio stream (audio goes to the wav)."""
    with av.open(str(path), "w", format="mp4", container_options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        stream.options = {"preset": "ultrafast", "crf": "30", "threads": "1"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_wav(path: Path, samples: np.ndarray) -> None:
    """int16 mono samples -> 16 kHz 16-bit PCM wav."""
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes(np.ascontiguousarray(samples, dtype="<i2").tobytes())


def write_jpeg(path: Path, frame: np.ndarray) -> None:
    Image.fromarray(frame, mode="RGB").save(path, format="JPEG", quality=JPEG_QUALITY)


def write_png(path: Path, array: np.ndarray) -> None:
    mode = "RGB" if array.ndim == 3 else "L"
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8), mode=mode).save(path, format="PNG")


def youtube_like_ids(rng: np.random.Generator, count: int, taken: set[str]) -> list[str]:
    """`count` fresh 11-character ids in YouTube's alphabet (not starting with '-', to keep CLIs happy)."""
    ids: list[str] = []
    while len(ids) < count:
        candidate = "".join(_ID_ALPHABET[rng.integers(0, 62, size=1)].tolist() + _ID_ALPHABET[rng.integers(0, 64, size=10)].tolist())
        if candidate not in taken:
            taken.add(candidate)
            ids.append(candidate)
    return ids
