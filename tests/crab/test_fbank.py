"""Kaldi fbank: against a plain per-frame loop that follows Kaldi's definition, plus hand-checkable facts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avbench.adapters.crab.fbank import (
    EPSILON,
    inverse_mel_scale,
    kaldi_fbank,
    mel_banks,
    mel_scale,
    num_frames,
)


def reference_fbank(x: np.ndarray, num_bins: int = 128, sr: int = 16000, low: float = 20.0, high: float = 0.0,
                    window: str = "povey", preemph: float = 0.97) -> np.ndarray:
    """Kaldi's compute-fbank-feats step by step, one frame and one filter at a time, in float64."""
    size, shift = int(sr * 0.025), int(sr * 0.010)
    nfft = 1
    while nfft < size:
        nfft *= 2
    nyquist = sr / 2
    high = high + nyquist if high <= 0 else high
    mel = lambda f: 1127.0 * math.log(1.0 + f / 700.0)  # noqa: E731
    mel_lo, mel_hi = mel(low), mel(high)
    delta = (mel_hi - mel_lo) / (num_bins + 1)
    out = []
    m = 1 + (len(x) - size) // shift  # snip edges: only whole frames
    for i in range(m):
        frame = np.array(x[i * shift: i * shift + size], dtype=np.float64)
        frame -= frame.mean()  # DC removal
        emph = np.empty_like(frame)
        for j in range(size - 1, -1, -1):  # pre-emphasis; the first sample uses itself as predecessor
            emph[j] = frame[j] - preemph * frame[max(j - 1, 0)]
        for j in range(size):
            hann = 0.5 - 0.5 * math.cos(2 * math.pi * j / (size - 1))
            emph[j] *= hann ** 0.85 if window == "povey" else (0.54 - 0.46 * math.cos(2 * math.pi * j / (size - 1)))
        padded = np.zeros(nfft)
        padded[:size] = emph
        power = np.abs(np.fft.rfft(padded)) ** 2
        row = []
        for b in range(num_bins):
            left, center, right = mel_lo + b * delta, mel_lo + (b + 1) * delta, mel_lo + (b + 2) * delta
            total = 0.0
            for k in range(nfft // 2):  # the Nyquist bin carries no filter
                mk = mel(k * sr / nfft)
                if left < mk <= center:
                    total += power[k] * (mk - left) / (center - left)
                elif center < mk < right:
                    total += power[k] * (right - mk) / (right - center)
            row.append(math.log(max(total, EPSILON)))
        out.append(row)
    return np.array(out)


def _noise(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n) * 3000.0 + 500.0  # a DC offset, which the per-frame removal takes out


def test_matches_the_step_by_step_definition_float64():
    x = _noise(400 + 160 * 5 + 37)  # 6 frames and a remainder that snip-edges drops
    ours = kaldi_fbank(torch.from_numpy(x)).numpy()
    ref = reference_fbank(x)
    assert ours.shape == ref.shape == (6, 128)
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)


def test_matches_the_definition_in_float32_as_beats_computes_it():
    x = _noise(1200, seed=1)
    ours = kaldi_fbank(torch.from_numpy(x).float())
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), reference_fbank(x), atol=1e-4, rtol=0)


def test_other_options_follow_the_definition():
    x = _noise(900, seed=2)
    ours = kaldi_fbank(torch.from_numpy(x), num_mel_bins=40, window_type="hamming", low_freq=100.0,
                       high_freq=-400.0, preemphasis_coefficient=0.5).numpy()
    ref = reference_fbank(x, num_bins=40, window="hamming", low=100.0, high=-400.0, preemph=0.5)
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)


def test_batch_dimensions_are_independent_rows():
    x = torch.from_numpy(np.stack([_noise(2000, seed=s) for s in range(3)]))
    batched = kaldi_fbank(x.reshape(3, 1, 2000))
    assert batched.shape == (3, 1, 11, 128)
    for s in range(3):
        torch.testing.assert_close(batched[s, 0], kaldi_fbank(x[s]), rtol=0, atol=1e-10)


def test_one_second_at_16khz_gives_98_frames():
    # 1 + (16000 - 400) // 160 = 98 (25 ms windows every 10 ms, only whole windows)
    assert num_frames(16000) == 98
    assert kaldi_fbank(torch.zeros(16000)).shape == (98, 128)
    assert num_frames(399) == 0 and num_frames(400) == 1 and num_frames(559) == 1 and num_frames(560) == 2


def test_pure_tone_peaks_in_the_filter_centred_on_it():
    # mel(20 Hz) = 31.7486, mel(8 kHz) = 2840.0377, 129 intervals of 21.7697 mel; filter b is centred at
    # mel(20) + (b + 1) * 21.7697, so filter 40 is centred at 924.3 mel = 889.58 Hz.
    assert mel_scale(700.0) == pytest.approx(1127 * math.log(2))
    f = inverse_mel_scale(mel_scale(20.0) + 41 * (mel_scale(8000.0) - mel_scale(20.0)) / 129)
    assert f == pytest.approx(889.58, abs=0.01)
    t = torch.arange(16000, dtype=torch.float64) / 16000
    feats = kaldi_fbank(10000 * torch.sin(2 * math.pi * f * t))
    assert (feats.argmax(dim=1) == 40).all()


def test_silence_is_floored_at_log_epsilon():
    feats = kaldi_fbank(torch.zeros(1000))
    assert torch.all(feats == math.log(EPSILON))


def test_mel_banks_are_triangles_that_peak_at_one_and_skip_nyquist():
    banks = mel_banks(128, 512, 16000, dtype=torch.float64)
    assert banks.shape == (128, 257)
    assert torch.all(banks[:, -1] == 0) and torch.all(banks >= 0) and torch.all(banks <= 1)
    # Filter 3 spans mel 97.06 .. 140.60 = 62.95 .. 93.00 Hz; the FFT bins lie at multiples of 31.25 Hz
    # (62.50, 93.75), so it catches none and is all zero, as in Kaldi (its output is then log(eps)).
    assert torch.all(banks[3] == 0)
    assert banks[2].sum() > 0 and banks[4].sum() > 0
    # Filter 40 spans mel 902.54 .. 946.08 (859.1 .. 920.6 Hz), centre 924.31: it holds FFT bins 28
    # (875 Hz = 913.93 mel, rising side: (913.93 - 902.54) / 21.77 = 0.523) and 29 (906.25 Hz = 936.06 mel,
    # falling side: (946.08 - 936.06) / 21.77 = 0.460).
    assert banks[40].nonzero().flatten().tolist() == [28, 29]
    assert banks[40, 28].item() == pytest.approx(0.523, abs=1e-3)
    assert banks[40, 29].item() == pytest.approx(0.460, abs=1e-3)


def test_dither_is_reproducible_with_a_generator_and_zero_by_default():
    x = torch.from_numpy(_noise(800, seed=3))
    a = kaldi_fbank(x, dither=1.0, generator=torch.Generator().manual_seed(5))
    b = kaldi_fbank(x, dither=1.0, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, kaldi_fbank(x))
    torch.testing.assert_close(kaldi_fbank(x), kaldi_fbank(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"window_type": "kaiser"}, "unknown window_type"),
        ({"num_mel_bins": 3}, "num_mel_bins"),
        ({"low_freq": 9000.0}, "bad mel range"),
        ({"preemphasis_coefficient": 1.5}, "preemphasis_coefficient"),
    ],
)
def test_bad_options_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kaldi_fbank(torch.zeros(1000), **kwargs)


def test_too_short_waveform_is_a_clear_error():
    with pytest.raises(ValueError, match="fewer than one"):
        kaldi_fbank(torch.zeros(399))
