"""Loader throughput: `MediaStream` (2 decode threads, prefetch 2) vs a raw serial PyAV + soundfile loop.

Both read the same clips (10 s, 25 fps, 320x240 H.264 with moving texture, plus a 16 kHz wav) and
produce the same arrays: 10 frames at 224 x 224 (`uniform_indices` of the 250) and 10 s of audio. The
raw loop is the least work any loader must do (decode every frame, convert the 10 picked ones), on one
thread. Goal (issue 4): the loader keeps >= 0.8x the raw throughput. Compare the two rows of group
"media" with `--benchmark-enable` (AVBENCH_BENCH_FULL=1: 32 clips instead of 4).
"""

from __future__ import annotations

import os

import av
import numpy as np
import pytest
import soundfile

from avbench.media import MediaSpec, MediaStream, uniform_indices
from avbench.synthav.media import write_mp4, write_wav
from avbench.types import Sample

N_CLIPS = 32 if os.environ.get("AVBENCH_BENCH_FULL") == "1" else 4
SPEC = MediaSpec(n_frames=10, frame_size=224, sample_rate=16000, audio_seconds=10.0)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Sample]:
    folder = tmp_path_factory.mktemp("bench-media")
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, size=(240, 640, 3), dtype=np.uint8)
    samples = []
    for i in range(N_CLIPS):
        # a texture panning 2 px per frame: every frame differs, so the decoder does real work
        frames = np.stack([texture[:, (2 * t + 7 * i) % 320 : (2 * t + 7 * i) % 320 + 320] for t in range(250)])
        write_mp4(folder / f"{i}.mp4", frames, fps=25)
        write_wav(folder / f"{i}.wav", (rng.standard_normal(160000) * 3000).astype(np.int16))
        samples.append(Sample(f"c{i}", "bench", "test", {"video": str(folder / f"{i}.mp4"), "audio": str(folder / f"{i}.wav")}))
    return samples


def raw_decode(samples: list[Sample]) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for sample in samples:
        with av.open(sample.media["video"]) as container:
            stream = container.streams.video[0]
            wanted = set(uniform_indices(stream.frames, SPEC.n_frames))
            frames = [f.to_ndarray(width=224, height=224, format="rgb24", interpolation="BICUBIC")
                      for k, f in enumerate(container.decode(stream)) if k in wanted]
        audio, _ = soundfile.read(sample.media["audio"], dtype="float32")
        out.append((np.stack(frames), audio))
    return out


def streamed(samples: list[Sample]) -> list[tuple[np.ndarray, np.ndarray]]:
    batches = [samples[i : i + 2] for i in range(0, len(samples), 2)]
    out = []
    with MediaStream(batches, SPEC, workers=2, prefetch=2) as stream:
        for _, decoded in stream:
            out.extend((m.frames, m.audio) for m in decoded)
    return out


@pytest.mark.benchmark(group="media")
def test_bench_raw_pyav_serial(benchmark, clips) -> None:
    result = benchmark.pedantic(raw_decode, args=(clips,), rounds=3, iterations=1)
    assert len(result) == N_CLIPS


@pytest.mark.benchmark(group="media")
def test_bench_media_stream(benchmark, clips) -> None:
    result = benchmark.pedantic(streamed, args=(clips,), rounds=3, iterations=1)
    # same arrays as the raw loop: the speed is not bought with different work
    for (frames, audio), (raw_frames, raw_audio) in zip(result, raw_decode(clips)):
        np.testing.assert_array_equal(frames, raw_frames)
        np.testing.assert_array_equal(audio, raw_audio)
