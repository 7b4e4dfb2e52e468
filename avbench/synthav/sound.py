"""What a class sounds like, and how tracks become a 16 kHz mono signal.

A class key k has a timbre family `k % 4` (pure tone, major chord, band-limited noise, amplitude-
pulsed tone) and a pitch that rises a quarter octave with `k // 4`, so the 70 AVSBench-semantic
classes get 70 distinct sounds. Every timbre is exactly periodic over one second (integer
frequencies, looped noise), so seconds can be concatenated without clicks.

A track may also carry a rhythmic pattern (MUSIC-AVQA, Ref-AVS): `PATTERN_STEPS` steps a second,
pattern p striking `p + 1` of them; the same steps make the object pulse in the frames.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16_000
PATTERN_STEPS = 8
N_PATTERNS = 6
FAMILIES = ("tone", "chord", "noise", "pulsed")
#: Gains of the loudness levels 1 < 2 < 3 (6 dB apart).
LEVEL_GAIN = {1: 0.12, 2: 0.24, 3: 0.48}


def pitch_of(key: int) -> int:
    """Fundamental in Hz (integer, so one second holds whole periods)."""
    return int(round(160 * 2 ** ((key // len(FAMILIES)) * 0.25)))


def family_of(key: int) -> str:
    return FAMILIES[key % len(FAMILIES)]


@lru_cache(maxsize=256)
def timbre(key: int) -> np.ndarray:
    """One second of class `key`'s sound at unit peak amplitude (float64, read-only)."""
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    f0 = pitch_of(key)
    family = family_of(key)
    if family == "tone":
        wave = np.sin(2 * np.pi * f0 * t)
    elif family == "chord":
        # root, major third, fifth (just intonation 4:5:6, rounded to whole Hz)
        wave = sum(np.sin(2 * np.pi * round(f0 * r) * t) for r in (1.0, 1.25, 1.5))
    elif family == "noise":
        spectrum = np.fft.rfft(np.random.default_rng(1000 + key).standard_normal(SAMPLE_RATE))
        freqs = np.fft.rfftfreq(SAMPLE_RATE, 1 / SAMPLE_RATE)
        spectrum[(freqs < f0 * 0.8) | (freqs > f0 * 1.6)] = 0
        wave = np.fft.irfft(spectrum, n=SAMPLE_RATE)
    else:
        rate = 2 + (key // len(FAMILIES)) % 5
        wave = np.sin(2 * np.pi * f0 * t) * (0.5 + 0.5 * np.cos(2 * np.pi * rate * t)) ** 2
    wave = wave / np.max(np.abs(wave))
    wave.setflags(write=False)
    return wave


def pattern_hits(pattern: int) -> tuple[int, ...]:
    """Steps (0..PATTERN_STEPS-1) of a second on which pattern `pattern` strikes; density = pattern + 1."""
    density = pattern + 1
    return tuple(sorted({(j * PATTERN_STEPS) // density for j in range(density)}))


@lru_cache(maxsize=64)
def pattern_envelope(pattern: int) -> np.ndarray:
    """One second of the pattern's amplitude envelope: a decaying strike on each hit step."""
    step = SAMPLE_RATE // PATTERN_STEPS
    decay = np.exp(-np.arange(step) / (0.045 * SAMPLE_RATE))
    envelope = np.zeros(SAMPLE_RATE)
    for hit in pattern_hits(pattern):
        envelope[hit * step : (hit + 1) * step] = decay
    envelope.setflags(write=False)
    return envelope


def mix(tracks: list[tuple[int, list[float], int | None]], seconds: int, rng: np.random.Generator) -> np.ndarray:
    """Sum tracks (key, per-second gain, pattern or None) over a faint noise floor; int16 samples.

    Gains switch with 10 ms ramps so a track starting or stopping does not click.
    """
    n = seconds * SAMPLE_RATE
    signal = rng.standard_normal(n) * 0.003
    ramp = int(0.01 * SAMPLE_RATE)
    for key, gains, pattern in tracks:
        if not any(gains):
            continue
        gain_curve = np.repeat(np.asarray(gains, dtype=np.float64), SAMPLE_RATE)
        for second in range(1, seconds):
            if gains[second] != gains[second - 1]:
                at = second * SAMPLE_RATE
                gain_curve[at - ramp // 2 : at + ramp // 2] = np.linspace(gains[second - 1], gains[second], 2 * (ramp // 2))
        wave = np.tile(timbre(key), seconds)
        if pattern is not None:
            wave = wave * np.tile(pattern_envelope(pattern), seconds)
        signal += wave * gain_curve
    return np.clip(np.rint(signal * 32767), -32768, 32767).astype(np.int16)
