"""Kaldi-compatible log-mel filterbank features in torch, vectorised over frames and batch.

Hand-written because nothing in our stack computes them: BEATs (and so Crab) feeds its encoder with
`torchaudio.compliance.kaldi.fbank`, but torchaudio is not in our stack and has no build for torch 2.13,
and `torch.stft`-based mel spectrograms differ from Kaldi in framing, DC removal, pre-emphasis, the
"povey" window and the mel filter definition. This module follows Kaldi's `compute-fbank-feats` as
torchaudio implements it (`torchaudio/compliance/kaldi.py`: `_get_strided`, `_get_window`,
`get_mel_banks`, `fbank`) for the options BEATs uses:

- frames of `frame_length` ms every `frame_shift` ms, only frames that fit entirely ("snip edges");
- per-frame DC removal, then pre-emphasis `x[j] - 0.97 * x[j-1]` with `x[-1] := x[0]`;
- a window (default "povey": the symmetric Hann window to the power 0.85), zero-padded to the next power
  of two for the FFT; power spectrum `|FFT|^2`;
- triangular filters equally spaced on Kaldi's mel scale `1127 ln(1 + f / 700)` between `low_freq` and
  `high_freq` (<= 0 means Nyquist + high_freq), triangles defined in the mel domain, no filter on the
  Nyquist bin; natural log with a floor at float32 machine epsilon.

The energy column (`use_energy`), VTLN warping and non-snip-edge framing are not implemented: BEATs
uses none of them.
"""

from __future__ import annotations

import functools
import math

import torch

#: Kaldi floors log arguments at `std::numeric_limits<float>::epsilon()`, whatever the compute dtype.
EPSILON = float(torch.finfo(torch.float32).eps)

WINDOW_TYPES = ("povey", "hanning", "hamming", "rectangular", "blackman")


def mel_scale(freq: torch.Tensor | float) -> torch.Tensor | float:
    """Kaldi's mel scale: `1127 ln(1 + f / 700)` (Hz -> mel)."""
    if isinstance(freq, torch.Tensor):
        return 1127.0 * torch.log1p(freq / 700.0)
    return 1127.0 * math.log1p(freq / 700.0)


def inverse_mel_scale(mel: torch.Tensor | float) -> torch.Tensor | float:
    """Inverse of `mel_scale` (mel -> Hz)."""
    if isinstance(mel, torch.Tensor):
        return 700.0 * torch.expm1(mel / 1127.0)
    return 700.0 * math.expm1(mel / 1127.0)


def frame_sizes(sample_frequency: float, frame_length: float, frame_shift: float) -> tuple[int, int, int]:
    """(window_size, window_shift, padded_window_size) in samples, as Kaldi rounds them (truncation, then
    the next power of two for the FFT)."""
    window_size = int(sample_frequency * frame_length * 0.001)
    window_shift = int(sample_frequency * frame_shift * 0.001)
    if window_size < 2 or window_shift < 1:
        raise ValueError(
            f"frame_length={frame_length} ms / frame_shift={frame_shift} ms at {sample_frequency} Hz give "
            f"{window_size} / {window_shift} samples; need at least 2 / 1"
        )
    padded = 1 << (window_size - 1).bit_length()
    return window_size, window_shift, padded


def num_frames(num_samples: int, sample_frequency: float = 16000, frame_length: float = 25,
               frame_shift: float = 10) -> int:
    """Frames Kaldi outputs with snip edges: `1 + (n - window_size) // window_shift`, 0 if n < window_size."""
    window_size, window_shift, _ = frame_sizes(sample_frequency, frame_length, frame_shift)
    return 0 if num_samples < window_size else 1 + (num_samples - window_size) // window_shift


@functools.lru_cache(maxsize=16)
def _mel_banks_cpu(num_mel_bins: int, padded_window_size: int, sample_frequency: float, low_freq: float,
                   high_freq: float) -> torch.Tensor:
    nyquist = 0.5 * sample_frequency
    if high_freq <= 0.0:
        high_freq += nyquist
    if num_mel_bins <= 3:
        raise ValueError(f"num_mel_bins must be > 3 (Kaldi), got {num_mel_bins}")
    if not (0.0 <= low_freq < nyquist and 0.0 < high_freq <= nyquist and low_freq < high_freq):
        raise ValueError(f"bad mel range low_freq={low_freq} Hz, high_freq={high_freq} Hz for Nyquist {nyquist} Hz")
    mel_low, mel_high = mel_scale(low_freq), mel_scale(high_freq)
    # num_bins + 1 intervals: the outer triangles' feet sit on low_freq and high_freq.
    delta = (mel_high - mel_low) / (num_mel_bins + 1)
    b = torch.arange(num_mel_bins, dtype=torch.float64).unsqueeze(1)
    left, center, right = mel_low + b * delta, mel_low + (b + 1) * delta, mel_low + (b + 2) * delta
    fft_bin_width = sample_frequency / padded_window_size
    # Bins 0 .. N/2 - 1 get filters; the Nyquist bin N/2 gets weight 0 (Kaldi's `num_fft_bins = N / 2`).
    mel = mel_scale(fft_bin_width * torch.arange(padded_window_size // 2, dtype=torch.float64)).unsqueeze(0)
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return torch.nn.functional.pad(banks, (0, 1))  # (num_mel_bins, N/2 + 1)


def mel_banks(num_mel_bins: int, padded_window_size: int, sample_frequency: float, low_freq: float = 20.0,
              high_freq: float = 0.0, *, device: torch.device | str | None = None,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Kaldi's triangular mel filters, shape (num_mel_bins, padded_window_size // 2 + 1), last column zero."""
    banks = _mel_banks_cpu(num_mel_bins, padded_window_size, float(sample_frequency), float(low_freq), float(high_freq))
    return banks.to(device=device, dtype=dtype)


def feature_window(window_type: str, window_size: int, *, blackman_coeff: float = 0.42,
                   device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Kaldi's analysis windows (all symmetric, i.e. `periodic=False`)."""
    if window_type == "povey":
        return torch.hann_window(window_size, periodic=False, device=device, dtype=dtype).pow(0.85)
    if window_type == "hanning":
        return torch.hann_window(window_size, periodic=False, device=device, dtype=dtype)
    if window_type == "hamming":
        return torch.hamming_window(window_size, periodic=False, alpha=0.54, beta=0.46, device=device, dtype=dtype)
    if window_type == "rectangular":
        return torch.ones(window_size, device=device, dtype=dtype)
    if window_type == "blackman":
        a = 2 * math.pi / (window_size - 1)
        n = torch.arange(window_size, device=device, dtype=dtype)
        return blackman_coeff - 0.5 * torch.cos(a * n) + (0.5 - blackman_coeff) * torch.cos(2 * a * n)
    raise ValueError(f"unknown window_type {window_type!r}; valid: {', '.join(WINDOW_TYPES)}")


def kaldi_fbank(
    waveform: torch.Tensor,
    num_mel_bins: int = 128,
    sample_frequency: float = 16000,
    frame_length: float = 25.0,
    frame_shift: float = 10.0,
    dither: float = 0.0,
    *,
    preemphasis_coefficient: float = 0.97,
    remove_dc_offset: bool = True,
    window_type: str = "povey",
    blackman_coeff: float = 0.42,
    round_to_power_of_two: bool = True,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    use_power: bool = True,
    use_log_fbank: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Log-mel filterbank energies as Kaldi's `compute-fbank-feats` / `torchaudio.compliance.kaldi.fbank`.

    `waveform`: (..., n) samples (any leading batch dimensions; Kaldi's scale, i.e. BEATs multiplies
    [-1, 1] audio by 2**15 first). Returns (..., num_frames, num_mel_bins) in the waveform's floating
    dtype (integer input is computed in float32). Defaults are torchaudio's except `num_mel_bins`, which
    defaults to BEATs' 128 (torchaudio: 23). `dither` adds `dither * N(0, 1)` noise per sample
    (`generator` makes it reproducible); BEATs uses 0.
    """
    if waveform.ndim == 0:
        raise ValueError("waveform must have at least one dimension (samples)")
    if not waveform.is_floating_point():
        waveform = waveform.float()
    if waveform.dtype in (torch.float16, torch.bfloat16):
        # FFTs in half precision are unsupported on CPU and too coarse anyway.
        waveform = waveform.float()
    if not 0.0 <= preemphasis_coefficient <= 1.0:
        raise ValueError(f"preemphasis_coefficient must be in [0, 1], got {preemphasis_coefficient}")
    window_size, window_shift, padded = frame_sizes(sample_frequency, frame_length, frame_shift)
    if not round_to_power_of_two:
        padded = window_size
        if padded % 2:
            raise ValueError(f"window of {window_size} samples is odd; use round_to_power_of_two=True")
    n = waveform.shape[-1]
    if n < window_size:
        raise ValueError(f"waveform has {n} samples, fewer than one {frame_length} ms frame ({window_size} samples)")
    dtype, device = waveform.dtype, waveform.device

    # (..., m, window_size): a strided view, copied by the first arithmetic below.
    frames = waveform.unfold(-1, window_size, window_shift)
    if dither != 0.0:
        noise = torch.randn(frames.shape, generator=generator, dtype=dtype, device=device)
        frames = frames + dither * noise
    if remove_dc_offset:
        frames = frames - frames.mean(dim=-1, keepdim=True)
    if preemphasis_coefficient != 0.0:
        previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
        frames = frames - preemphasis_coefficient * previous
    window = feature_window(window_type, window_size, blackman_coeff=blackman_coeff, device=device, dtype=dtype)
    frames = frames * window
    spectrum = torch.fft.rfft(frames, n=padded, dim=-1).abs()  # rfft zero-pads to `padded`
    if use_power:
        spectrum = spectrum.pow(2)
    banks = mel_banks(num_mel_bins, padded, sample_frequency, low_freq, high_freq, device=device, dtype=dtype)
    energies = spectrum @ banks.T
    if use_log_fbank:
        energies = torch.clamp(energies, min=EPSILON).log()
    return energies
