"""Media decoding (avbench.media): frame sampling, audio resampling, errors, the prefetching stream."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avbench.media import (
    MediaError, MediaSpec, MediaStream, decode_audio, decode_media, decode_video, load_frames, uniform_indices,
)
from avbench.synthav.media import write_mp4
from avbench.types import Sample

from fakes_media import write_tone


def test_uniform_indices_take_part_centres() -> None:
    assert uniform_indices(10, 10) == list(range(10))
    assert uniform_indices(5, 10) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    # 250 frames (10 s at 25 fps) -> the middle frame of each second: floor((i + 0.5) * 25)
    assert uniform_indices(250, 10) == [12, 37, 62, 87, 112, 137, 162, 187, 212, 237]
    assert uniform_indices(7, 1) == [3]
    with pytest.raises(ValueError):
        uniform_indices(0, 3)


def _grey_ramp_video(path: Path, n_frames: int) -> None:
    """Frame k is uniformly grey at level 8 * k: the decoded level tells which frame was picked."""
    levels = (8 * np.arange(n_frames)).astype(np.uint8)
    frames = np.broadcast_to(levels[:, None, None, None], (n_frames, 64, 64, 3))
    write_mp4(path, np.ascontiguousarray(frames), fps=10)


def test_video_frames_are_the_uniformly_picked_ones(tmp_path: Path) -> None:
    path = tmp_path / "ramp.mp4"
    _grey_ramp_video(path, 30)
    frames = decode_video(path, 6, 32)
    assert frames.shape == (6, 32, 32, 3) and frames.dtype == np.uint8
    picked = uniform_indices(30, 6)  # [2, 7, 12, 17, 22, 27]
    np.testing.assert_allclose(frames.reshape(6, -1).mean(axis=1), 8 * np.array(picked), atol=3)


def test_start_anchored_frames_are_crabs(tmp_path: Path) -> None:
    """`frame_anchor="start"` picks what Crab's loader picks: `np.arange(0, n, n / k).astype(int)`."""
    for n, k in ((25, 10), (250, 10), (30, 6), (7, 10)):
        assert uniform_indices(n, k, "start") == np.arange(0, n, n / k).astype(int).tolist()
    with pytest.raises(ValueError, match="frame anchor"):
        uniform_indices(10, 5, "middle")
    path = tmp_path / "ramp.mp4"
    _grey_ramp_video(path, 30)
    frames = decode_video(path, 6, 32, anchor="start")
    np.testing.assert_allclose(frames.reshape(6, -1).mean(axis=1), 8 * np.array([0, 5, 10, 15, 20, 25]), atol=3)


def test_audio_is_resampled_downmixed_and_padded(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    write_tone(path, seconds=1.0, rate=48000)  # 440 Hz at 0.5 in the left channel, silence right
    audio = decode_audio(path, 16000, 2.0)
    assert audio.shape == (32000,) and audio.dtype == np.float32
    body = audio[800:15200]
    assert np.abs(body).max() == pytest.approx(0.25, abs=0.01)  # (0.5 + 0) / 2: channels averaged
    spectrum = np.abs(np.fft.rfft(body))
    assert np.fft.rfftfreq(body.size, 1 / 16000)[spectrum.argmax()] == pytest.approx(440, abs=2)
    assert not audio[16100:].any()  # zero padding after the 1 s of sound
    assert decode_audio(path, 16000, 0.5).shape == (8000,)
    assert decode_audio(path, 16000, None).shape == (16000,)


def test_listed_frames_are_repeated_or_subsampled(tmp_path: Path) -> None:
    paths = []
    for k in range(5):
        paths.append(tmp_path / f"{k}.png")
        Image.fromarray(np.full((40, 60, 3), 50 * k, np.uint8)).save(paths[-1])
    frames = load_frames(paths, 10, 16)
    assert frames.shape == (10, 16, 16, 3)
    np.testing.assert_array_equal(frames[:, 0, 0, 0], 50 * np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]))


def test_missing_and_corrupt_files_raise_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="video file not found") as info:
        decode_video(tmp_path / "none.mp4", 4, 32)
    assert info.value.path == str(tmp_path / "none.mp4")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 200)
    with pytest.raises(MediaError, match="cannot decode video") as info:
        decode_video(broken, 4, 32)
    assert info.value.path == str(broken)
    bad_wav = tmp_path / "bad.wav"
    bad_wav.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(MediaError, match="cannot decode audio"):
        decode_audio(bad_wav, 16000, 1.0)
    bad_png = tmp_path / "bad.png"
    bad_png.write_bytes(b"not a png")
    with pytest.raises(MediaError, match="cannot decode image") as info:
        load_frames([bad_png], 1, 8)
    assert info.value.path == str(bad_png)


def test_decode_media_falls_back_to_the_video_audio(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    _grey_ramp_video(video, 10)  # no audio stream
    sample = Sample("s", "t", "test", {"video": str(video), "audio": str(tmp_path / "missing.wav")})
    spec = MediaSpec(n_frames=2, frame_size=16, audio_seconds=1.0)
    with pytest.raises(MediaError, match="audio file not found, and the video gives none") as info:
        decode_media(sample, spec)
    assert info.value.path == str(tmp_path / "missing.wav")
    only_frames = decode_media(sample, MediaSpec(n_frames=2, frame_size=16, need_audio=False))
    assert only_frames.frames.shape == (2, 16, 16, 3) and only_frames.audio is None
    write_tone(tmp_path / "missing.wav")
    both = decode_media(sample, spec)
    assert both.audio.shape == (16000,)


def test_stream_keeps_order_and_bounds_prefetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pulled = []
    lock = threading.Lock()

    def batches():
        for b in range(12):
            with lock:
                pulled.append(b)
            yield [Sample(f"{b}-{i}", "t", "test", {}) for i in range(3)]

    # A fake decoder that is slow for early samples, so that completion order differs from sample order.
    def fake_decode(sample, spec):
        import time
        time.sleep(0.002 * (3 - int(sample.id[-1])))
        return sample.id

    monkeypatch.setattr("avbench.media.decode_or_error", fake_decode)
    seen = []
    with MediaStream(batches(), MediaSpec(), workers=3, prefetch=2) as stream:
        for consumed, (batch, decoded) in enumerate(stream):
            assert decoded == [s.id for s in batch]
            seen.extend(decoded)
            # memory bound: at most the batch being consumed plus `prefetch` more were taken from the source
            assert len(pulled) <= consumed + 1 + 2
    assert seen == [f"{b}-{i}" for b in range(12) for i in range(3)]
