"""BEATs audio encoder (Chen et al., "BEATs: Audio Pre-Training with Acoustic Tokenizers", ICML 2023),
loadable from the official checkpoints, and Crab's one-second audio segmentation.

transformers has no BEATs model, so it is written here in plain torch. The architecture, parameter names
and preprocessing follow the official code (microsoft/unilm `beats/BEATs.py`, `backbone.py`,
`modules.py`); the state dict of `BEATs` has exactly the official key names, so an official checkpoint
(`{"cfg": {...}, "model": state_dict}`, e.g. `BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt`, the one
Crab uses) loads strictly through `load_beats_checkpoint`.

Reads top to bottom: config, preprocessing, building blocks (weight-normed positional conv, relative
position buckets, attention with gated relative position bias), encoder layer, encoder, model,
checkpoint I/O, Crab's per-second segments.

Pipeline (official `BEATs.extract_features`):
  waveform in [-1, 1] at 16 kHz -> x 2**15 -> Kaldi fbank (128 mel, 25 ms / 10 ms) -> (fbank - 15.41663)
  / (2 x 6.55582) -> Conv2d patches 16 x 16 (time x mel; 8 mel patches per 16 frames) -> LayerNorm ->
  Linear 512 -> 768 -> encoder: x + GELU(weight-normed grouped Conv1d(x)) -> LayerNorm (post-LN) ->
  12 post-LN layers with DeepNorm residual scaling and one relative-position bias table shared by all
  layers, gated per layer and head from the query ("gated relative position bias", WavLM-style).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from avbench.errors import DataError

from .fbank import kaldi_fbank

#: Official fbank normalisation (`BEATs.preprocess` defaults: AudioSet mean / std of the log-mel values).
FBANK_MEAN = 15.41663
FBANK_STD = 6.55582
SAMPLE_RATE = 16000
NUM_MEL_BINS = 128


# ----------------------------------------------------------------------------------------------- config


@dataclass
class BEATsConfig:
    """The official `BEATsConfig` fields and defaults (`BEATs.py`), plus `extra` for unknown cfg keys.

    `input_patch_size` defaults to 16 here (the official class has a -1 placeholder; every released
    checkpoint sets 16). Released checkpoints (iter3, iter3+) use 12 layers of width 768, embed_dim 512,
    relative_position_embedding, gru_rel_pos and deep_norm; the AS2M fine-tuned ones add the 527-class
    predictor (finetuned_model).
    """

    input_patch_size: int = 16
    embed_dim: int = 512
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_wise_gradient_decay_ratio: float = 1.0
    layer_norm_first: bool = False
    deep_norm: bool = False
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    encoder_layerdrop: float = 0.0
    dropout_input: float = 0.0
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = False
    num_buckets: int = 320
    max_distance: int = 1280
    gru_rel_pos: bool = False
    finetuned_model: bool = False
    predictor_dropout: float = 0.1
    predictor_class: int = 527
    #: cfg keys this implementation does not know; kept so a checkpoint round-trips, never used.
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.activation_fn not in _ACTIVATIONS:
            raise ValueError(
                f"BEATs activation_fn {self.activation_fn!r} is not supported; valid: {', '.join(sorted(_ACTIVATIONS))}"
            )
        if self.deep_norm and self.layer_norm_first:
            raise ValueError("BEATs deep_norm and layer_norm_first exclude each other (official assertion)")
        if self.encoder_embed_dim % self.encoder_attention_heads:
            raise ValueError(
                f"encoder_embed_dim {self.encoder_embed_dim} is not divisible by "
                f"encoder_attention_heads {self.encoder_attention_heads}"
            )
        if self.encoder_embed_dim % self.conv_pos_groups:
            raise ValueError(
                f"encoder_embed_dim {self.encoder_embed_dim} is not divisible by conv_pos_groups {self.conv_pos_groups}"
            )
        if self.input_patch_size < 1 or NUM_MEL_BINS % self.input_patch_size:
            raise ValueError(f"input_patch_size must divide the {NUM_MEL_BINS} mel bins, got {self.input_patch_size}")
        if self.relative_position_embedding and (self.num_buckets < 4 or self.max_distance <= self.num_buckets // 4):
            raise ValueError(
                f"relative position buckets need num_buckets >= 4 and max_distance > num_buckets / 4, "
                f"got {self.num_buckets} / {self.max_distance}"
            )

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> BEATsConfig:
        """From a checkpoint's `cfg` dict. Known keys are type-checked; unknown ones go to `extra`."""
        known = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in cfg.items():
            if key not in known:
                extra[key] = value
                continue
            default = known[key].default
            values[key] = _coerce(key, value, type(default))
        return cls(**values, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The official `cfg` dict (unknown keys from `extra` included)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        out.update(self.extra)
        return out

    @classmethod
    def tiny(cls, **overrides: Any) -> BEATsConfig:
        """A ~29 K-parameter config with every architectural branch of the released models switched
        on (post_extract_proj, even conv_pos, relative position buckets, GRU gating, deep norm), no dropout."""
        base: dict[str, Any] = dict(
            input_patch_size=16, embed_dim=24, encoder_layers=2, encoder_embed_dim=32,
            encoder_ffn_embed_dim=64, encoder_attention_heads=2, conv_pos=16, conv_pos_groups=4,
            relative_position_embedding=True, num_buckets=32, max_distance=64, gru_rel_pos=True,
            deep_norm=True, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
            encoder_layerdrop=0.0, dropout_input=0.0, predictor_dropout=0.0, predictor_class=5,
        )
        base.update(overrides)
        return cls(**base)


def _coerce(key: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    raise ValueError(f"BEATs cfg {key!r} should be {kind.__name__}, got {value!r}")


# ---------------------------------------------------------------------------------------- preprocessing


def beats_fbank(waveform: torch.Tensor, fbank_mean: float = FBANK_MEAN, fbank_std: float = FBANK_STD) -> torch.Tensor:
    """Official `BEATs.preprocess`: (B, n) waveform in [-1, 1] at 16 kHz -> (B, frames, 128) float32,
    `(kaldi_fbank(waveform * 2**15) - mean) / (2 * std)`."""
    if waveform.ndim != 2:
        raise ValueError(f"waveform must be (batch, samples), got shape {tuple(waveform.shape)}")
    # Always in float32: the official code runs torchaudio's fbank on float32 input, and FFTs in half
    # precision are unsupported on CPU.
    fbank = kaldi_fbank(waveform.float() * 2**15, num_mel_bins=NUM_MEL_BINS, sample_frequency=SAMPLE_RATE,
                        frame_length=25.0, frame_shift=10.0)
    return (fbank - fbank_mean) / (2 * fbank_std)


def pool_padding_mask(padding_mask: torch.Tensor, length: int) -> torch.Tensor:
    """Official `BEATs.forward_padding_mask`: (B, L) -> (B, length) by dropping the last `L % length`
    entries and marking a position padded when all of its `L // length` consecutive entries are.

    BEATs applies it twice: samples -> fbank frames, then frames -> patches. The second step treats the
    time-major patch order as if it were a frame order (2 frames per patch for 128 mel bins and 16 x 16
    patches), so a patch straddling the padding boundary can be kept or dropped per mel band; we keep the
    official rule so masked outputs match the official model."""
    if padding_mask.ndim != 2:
        raise ValueError(f"padding_mask must be (batch, length), got shape {tuple(padding_mask.shape)}")
    if padding_mask.shape[1] < length:
        raise ValueError(
            f"padding_mask has {padding_mask.shape[1]} entries, fewer than the {length} positions it must cover"
        )
    padding_mask = padding_mask.bool()
    extra = padding_mask.shape[1] % length
    if extra:
        padding_mask = padding_mask[:, :-extra]
    return padding_mask.reshape(padding_mask.shape[0], length, -1).all(dim=-1)


# ---------------------------------------------------------------------------------------- building blocks


class _GradMultiply(torch.autograd.Function):
    """Identity forward, gradient times `scale` backward (official `GradMultiply`, layer-wise decay)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad * ctx.scale, None


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    # Official "gelu" computes the exact GELU in float32 and casts back.
    "gelu": lambda x: F.gelu(x.float()).type_as(x),
    "gelu_accurate": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "relu": F.relu,
    "tanh": torch.tanh,
    "linear": lambda x: x,
}


class WeightNormConv1d(nn.Module):
    """Grouped Conv1d with weight normalisation over the kernel axis, stored as the official checkpoints
    store it (`weight_g`, `weight_v`, `bias`: `torch.nn.utils.weight_norm(conv, dim=2)`).

    `weight = weight_v * weight_g / ||weight_v||`, the norm over output and input channels for each kernel
    tap (g has shape (1, 1, kernel)). Written out rather than using torch's parametrisation, whose
    parameters are named `parametrizations.weight.original0/1` and would not match the checkpoint keys.
    """

    def __init__(self, channels: int, kernel_size: int, groups: int):
        super().__init__()
        self.kernel_size, self.groups = kernel_size, groups
        self.weight_g = nn.Parameter(torch.empty(1, 1, kernel_size))
        self.weight_v = nn.Parameter(torch.empty(channels, channels // groups, kernel_size))
        self.bias = nn.Parameter(torch.zeros(channels))
        # Official init: N(0, sqrt(4 / (kernel * channels))), then weight_norm sets g = ||v||.
        nn.init.normal_(self.weight_v, mean=0.0, std=math.sqrt(4.0 / (kernel_size * channels)))
        with torch.no_grad():
            self.weight_g.copy_(self.weight_v.norm(dim=(0, 1), keepdim=True))

    @property
    def weight(self) -> torch.Tensor:
        return self.weight_v * (self.weight_g / self.weight_v.norm(dim=(0, 1), keepdim=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T) -> (B, C, T + 1 - kernel % 2)
        if x.device.type == "cpu" and x.dtype == torch.bfloat16:
            # torch 2.13's CPU grouped conv1d in bfloat16 is wrong on some CPUs (measured here: max error 3.7
            # on outputs of magnitude 3; 0.018 computed in float32 from the same bfloat16 weights)
            out = F.conv1d(x.float(), self.weight.float(), self.bias.float(), padding=self.kernel_size // 2, groups=self.groups)
            return out.to(x.dtype)
        return F.conv1d(x, self.weight, self.bias, padding=self.kernel_size // 2, groups=self.groups)


class _SamePad(nn.Module):
    """Drops the extra last step an even kernel with padding k // 2 produces (official `SamePad`)."""

    def __init__(self, kernel_size: int):
        super().__init__()
        self.remove = 1 if kernel_size % 2 == 0 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, : -self.remove] if self.remove else x


def relative_position_bucket(relative_position: torch.Tensor, num_buckets: int, max_distance: int) -> torch.Tensor:
    """Official bidirectional T5-style buckets (`MultiheadAttention._relative_positions_bucket`).

    Half the buckets for keys after the query (relative_position > 0), half for the rest; in each half,
    distances below `num_buckets // 4` get their own bucket, larger ones share log-spaced buckets up to
    `max_distance`, beyond which they stay in the last bucket.
    """
    half = num_buckets // 2
    buckets = (relative_position > 0).long() * half
    distance = relative_position.abs()
    max_exact = half // 2
    # float32 as in the official code, so truncation lands on the same integers; clamp only avoids log(0)
    # for the short distances, which take the exact branch anyway.
    scaled = torch.log(distance.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact)
    large = (max_exact + (scaled * (half - max_exact)).long()).clamp(max=half - 1)
    return buckets + torch.where(distance < max_exact, distance, large)


class BEATsSelfAttention(nn.Module):
    """Multi-head self-attention with an optional gated relative position bias (official
    `MultiheadAttention`, self-attention path).

    scores = q k^T / sqrt(d_head) + gate(q) * bias[bucket(j - i)], with
    gate = a (b grep_a - 1) + 2, (a, b) = sigmoid of the two 4-sums of grep_linear(q_raw) per head, where
    q_raw is q_proj's output before scaling. The official code subtracts the row maximum (and rescales
    by 32) before adding the bias for fp16 range; softmax is invariant to that, and
    `scaled_dot_product_attention` computes it in a numerically safe way.
    """

    def __init__(self, cfg: BEATsConfig):
        super().__init__()
        dim, heads = cfg.encoder_embed_dim, cfg.encoder_attention_heads
        self.num_heads, self.head_dim = heads, dim // heads
        self.attention_dropout = cfg.attention_dropout
        self.num_buckets, self.max_distance = cfg.num_buckets, cfg.max_distance
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        # Built in every layer for the official key names; the encoder makes layers 1.. share layer 0's.
        self.relative_attention_bias = nn.Embedding(cfg.num_buckets, heads) if cfg.relative_position_embedding else None
        self.gru_rel_pos = cfg.gru_rel_pos
        if cfg.gru_rel_pos:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))
        # Initialised by BEATsEncoder (the official reset_parameters init is overwritten there anyway).

    def compute_bias(self, length: int) -> torch.Tensor:
        """(heads, length, length): bias[h, i, j] = table[bucket(j - i), h]."""
        if self.relative_attention_bias is None:
            raise RuntimeError("this BEATs config has no relative position embedding")
        device = self.relative_attention_bias.weight.device
        pos = torch.arange(length, device=device)
        buckets = relative_position_bucket(pos[None, :] - pos[:, None], self.num_buckets, self.max_distance)
        return self.relative_attention_bias(buckets).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None,
                position_bias: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, C); key_padding_mask: (B, T) True = padding; position_bias: (heads, T, T) or None."""
        b, t, c = x.shape
        q = self.q_proj(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, d)
        k = self.k_proj(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        mask: torch.Tensor | None = None
        if position_bias is not None:
            bias = position_bias.unsqueeze(0).to(q.dtype)  # (1, H, T, T)
            if self.gru_rel_pos:
                gates = torch.sigmoid(self.grep_linear(q).view(b, self.num_heads, t, 2, 4).sum(-1))
                gate_a, gate_b = gates.chunk(2, dim=-1)  # (B, H, T, 1) each
                bias = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * bias
            mask = bias.expand(b, -1, -1, -1)
        if key_padding_mask is not None:
            pad = key_padding_mask[:, None, None, :]
            mask = torch.zeros((), dtype=q.dtype, device=q.device) if mask is None else mask
            mask = mask.masked_fill(pad, float("-inf"))
        dropout = self.attention_dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, c))


class BEATsEncoderLayer(nn.Module):
    """Official `TransformerSentenceEncoderLayer`: attention + FFN, post-LN with DeepNorm residual scale
    alpha = (2 * layers)^(1/4) (or pre-LN when layer_norm_first)."""

    def __init__(self, cfg: BEATsConfig):
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.self_attn = BEATsSelfAttention(cfg)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.activation = _ACTIVATIONS[cfg.activation_fn]
        self.layer_norm_first = cfg.layer_norm_first
        self.deep_norm_alpha = math.pow(2 * cfg.encoder_layers, 0.25) if cfg.deep_norm else 1.0
        self.dropout1 = nn.Dropout(cfg.dropout)
        self.dropout2 = nn.Dropout(cfg.activation_dropout)
        self.dropout3 = nn.Dropout(cfg.dropout)

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout3(self.fc2(self.dropout2(self.activation(self.fc1(x)))))

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None,
                position_bias: torch.Tensor | None) -> torch.Tensor:
        if self.layer_norm_first:
            x = x + self.dropout1(self.self_attn(self.self_attn_layer_norm(x), padding_mask, position_bias))
            return x + self._ffn(self.final_layer_norm(x))
        a = self.deep_norm_alpha
        x = self.self_attn_layer_norm(x * a + self.dropout1(self.self_attn(x, padding_mask, position_bias)))
        return self.final_layer_norm(x * a + self._ffn(x))


class BEATsEncoder(nn.Module):
    """Official `TransformerEncoder`: convolutional positional embedding, then the layers."""

    def __init__(self, cfg: BEATsConfig):
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.pos_conv = nn.Sequential(
            WeightNormConv1d(dim, cfg.conv_pos, cfg.conv_pos_groups), _SamePad(cfg.conv_pos), nn.GELU()
        )
        self.layers = nn.ModuleList(BEATsEncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.relative_position_embedding = cfg.relative_position_embedding
        if cfg.relative_position_embedding:
            # One table for all layers, as in the official encoder; each layer's state-dict entry names it.
            shared = self.layers[0].self_attn.relative_attention_bias
            for layer in self.layers[1:]:
                layer.self_attn.relative_attention_bias = shared
        self.layer_norm = nn.LayerNorm(dim)
        self.layer_norm_first = cfg.layer_norm_first
        self.dropout = cfg.dropout
        self.layerdrop = cfg.encoder_layerdrop
        self.grad_decay = cfg.layer_wise_gradient_decay_ratio
        # Official init order: BERT init (N(0, 0.02) linears and embeddings, zero biases; the positional
        # conv keeps its own), then DeepNorm's Xavier gains beta = (8 * layers)^(-1/4) on v, out, fc1, fc2.
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
        if cfg.deep_norm:
            beta = math.pow(8 * cfg.encoder_layers, -0.25)
            for layer in self.layers:
                attn = layer.self_attn
                for weight, gain in ((attn.k_proj.weight, 1.0), (attn.v_proj.weight, beta), (attn.q_proj.weight, 1.0),
                                     (attn.out_proj.weight, beta), (layer.fc1.weight, beta), (layer.fc2.weight, beta)):
                    nn.init.xavier_normal_(weight, gain=gain)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, C); padding_mask: (B, T) True = padding. Returns (B, T, C)."""
        if padding_mask is not None:
            if padding_mask.shape != x.shape[:2]:
                raise ValueError(
                    f"padding_mask shape {tuple(padding_mask.shape)} does not match features {tuple(x.shape[:2])}"
                )
            if padding_mask.all(dim=1).any():
                raise ValueError("padding_mask marks every position of a sequence as padding; nothing to attend to")
            x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        x = F.dropout(x, p=self.dropout, training=self.training)
        bias = self.layers[0].self_attn.compute_bias(x.shape[1]) if self.relative_position_embedding else None
        for layer in self.layers:
            if self.grad_decay != 1.0 and torch.is_grad_enabled():
                x = _GradMultiply.apply(x, self.grad_decay)
            if self.training and self.layerdrop > 0 and torch.rand(()) < self.layerdrop:
                continue
            x = layer(x, padding_mask, bias)
        if self.layer_norm_first:
            x = self.layer_norm(x)
        return x


# --------------------------------------------------------------------------------------------------- model


class BEATs(nn.Module):
    """The BEATs encoder (official `BEATs` class), with the official parameter names."""

    def __init__(self, cfg: BEATsConfig):
        super().__init__()
        self.cfg = cfg
        self.patch_embedding = nn.Conv2d(1, cfg.embed_dim, kernel_size=cfg.input_patch_size,
                                         stride=cfg.input_patch_size, bias=cfg.conv_bias)
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        self.post_extract_proj = (
            nn.Linear(cfg.embed_dim, cfg.encoder_embed_dim) if cfg.embed_dim != cfg.encoder_embed_dim else None
        )
        self.dropout_input = nn.Dropout(cfg.dropout_input)
        self.encoder = BEATsEncoder(cfg)
        if cfg.finetuned_model:
            self.predictor_dropout = nn.Dropout(cfg.predictor_dropout)
            self.predictor: nn.Linear | None = nn.Linear(cfg.encoder_embed_dim, cfg.predictor_class)
        else:
            self.predictor = None

    @property
    def dtype(self) -> torch.dtype:
        return self.patch_embedding.weight.dtype

    def extract_features_from_fbank(self, fbank: torch.Tensor, padding_mask: torch.Tensor | None = None
                                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Normalised fbank (B, frames, 128) -> (features (B, N, encoder_embed_dim), patch padding mask or
        None). `padding_mask`: (B, frames), True = padding. N = (frames // 16) * 8 for 16 x 16 patches,
        ordered time-major (patch i covers frames 16 (i // 8) .. and mel band i % 8). Crab's variant of
        `extract_features` takes this fbank directly."""
        if fbank.ndim != 3 or fbank.shape[-1] != NUM_MEL_BINS:
            raise ValueError(f"fbank must be (batch, frames, {NUM_MEL_BINS}), got shape {tuple(fbank.shape)}")
        if fbank.shape[1] < self.cfg.input_patch_size:
            raise ValueError(
                f"{fbank.shape[1]} fbank frames are fewer than one {self.cfg.input_patch_size}-frame patch "
                f"(audio shorter than {(self.cfg.input_patch_size - 1) * 10 + 25} ms)"
            )
        if padding_mask is not None:
            padding_mask = pool_padding_mask(padding_mask.to(fbank.device), fbank.shape[1])
        x = self.patch_embedding(fbank.to(self.dtype).unsqueeze(1))  # (B, E, frames // p, 128 // p)
        x = x.flatten(2).transpose(1, 2)  # (B, N, E), time-major
        x = self.layer_norm(x)
        if padding_mask is not None:
            padding_mask = pool_padding_mask(padding_mask, x.shape[1])
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        x = self.encoder(self.dropout_input(x), padding_mask)
        return x, padding_mask

    def extract_features(self, waveform: torch.Tensor, padding_mask: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Official `extract_features` (features only): waveform (B, n) in [-1, 1] at 16 kHz ->
        (features (B, N, encoder_embed_dim), padding mask (B, N) or None). `padding_mask`: (B, n) over
        samples, True = padding; it is pooled to frames and then to patches by the official rule
        (`pool_padding_mask`). One second of audio gives 98 frames -> 6 x 8 = 48 patches."""
        fbank = beats_fbank(waveform.to(self.patch_embedding.weight.device))
        return self.extract_features_from_fbank(fbank, padding_mask)

    def forward(self, waveform: torch.Tensor, padding_mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Same as `extract_features`."""
        return self.extract_features(waveform, padding_mask)

    def predict(self, waveform: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Fine-tuned checkpoints only: (B, predictor_class) sigmoid class probabilities of the patch logits
        averaged over non-padded patches (official `extract_features` with a predictor)."""
        if self.predictor is None:
            raise ValueError("this BEATs model has no predictor (cfg.finetuned_model is False)")
        x, mask = self.extract_features(waveform, padding_mask)
        logits = self.predictor(self.predictor_dropout(x))
        if mask is None:
            return torch.sigmoid(logits.mean(dim=1))
        keep = (~mask).unsqueeze(-1).to(logits.dtype)
        return torch.sigmoid((logits * keep).sum(dim=1) / keep.sum(dim=1))

    def extract_segment_features(self, segments: torch.Tensor) -> torch.Tensor:
        """Crab's audio encoding: every segment encoded on its own (its own fbank and normalisation, no
        padding mask), all segments in one batch. segments: (..., t, L) -> (..., t, N, encoder_embed_dim).
        See `crab_segments` for how Crab cuts a clip into segments."""
        if segments.ndim < 2:
            raise ValueError(f"segments must be (..., t, samples), got shape {tuple(segments.shape)}")
        lead = segments.shape[:-1]
        features, _ = self.extract_features(segments.reshape(-1, segments.shape[-1]))
        return features.reshape(*lead, *features.shape[1:])



# ------------------------------------------------------------------------------------------ checkpoints

_REL_BIAS_KEY = "encoder.layers.{}.self_attn.relative_attention_bias.weight"
# torch.nn.utils.parametrizations.weight_norm names; the official (legacy weight_norm) names are g / v.
_PARAMETRIZED = {
    "encoder.pos_conv.0.parametrizations.weight.original0": "encoder.pos_conv.0.weight_g",
    "encoder.pos_conv.0.parametrizations.weight.original1": "encoder.pos_conv.0.weight_v",
}


def _normalise_state_dict(state: Mapping[str, torch.Tensor], cfg: BEATsConfig,
                          where: str | None) -> dict[str, torch.Tensor]:
    """Official key layout from equivalent ones: parametrised weight-norm names -> weight_g / weight_v;
    the shared relative-position table, if stored only under layer 0, repeated for the other layers (and
    if stored per layer, checked to be one table)."""
    out = {_PARAMETRIZED.get(k, k): v for k, v in state.items()}
    if cfg.relative_position_embedding and _REL_BIAS_KEY.format(0) in out:
        table = out[_REL_BIAS_KEY.format(0)]
        for i in range(1, cfg.encoder_layers):
            key = _REL_BIAS_KEY.format(i)
            if key not in out:
                out[key] = table
            elif out[key].shape == table.shape and not torch.equal(out[key], table):
                raise DataError(f"{key} differs from layer 0's; BEATs shares one relative position table", where)
    return out


def load_beats_checkpoint(source: str | Path | Mapping[str, Any], *, device: torch.device | str = "cpu",
                          dtype: torch.dtype | None = None) -> BEATs:
    """A `BEATs` in eval mode from an official checkpoint (a path to the `torch.save`d
    `{"cfg": ..., "model": state_dict}`, or that dict). Loading is strict: missing or unexpected keys and
    shape mismatches raise `DataError` listing them."""
    where = str(source) if isinstance(source, (str, Path)) else None
    if where is not None:
        path = Path(where)
        if not path.is_file():
            raise DataError("BEATs checkpoint not found", path)
        try:
            # weights_only: an official checkpoint holds only a dict of plain values and tensors.
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # unpickling errors come in many types
            raise DataError(f"cannot read BEATs checkpoint: {exc}", path) from exc
    else:
        checkpoint = source
    if not isinstance(checkpoint, Mapping) or "cfg" not in checkpoint or "model" not in checkpoint:
        keys = sorted(checkpoint) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise DataError(f"not a BEATs checkpoint: expected a dict with 'cfg' and 'model', got {keys}", where)
    try:
        cfg = BEATsConfig.from_dict(checkpoint["cfg"])
    except (ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"bad BEATs cfg: {exc}", where) from exc
    model = BEATs(cfg)
    state = _normalise_state_dict(checkpoint["model"], cfg, where)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(state) & set(expected) if state[k].shape != expected[k].shape
    )
    if missing or unexpected or mismatched:
        parts = [f"{name} ({len(keys)}): {', '.join(keys)}"
                 for name, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                    ("shape mismatches", mismatched)) if keys]
        raise DataError("BEATs checkpoint does not match its cfg; " + "; ".join(parts), where)
    model.load_state_dict(state, strict=True)
    model.to(device=device, dtype=dtype).eval()
    return model


def save_beats_checkpoint(model: BEATs, path: str | Path) -> None:
    """Write `model` in the official layout, `torch.save({"cfg": cfg_dict, "model": state_dict})`, with
    the official key names (the shared relative-position table under every layer, weight_g / weight_v)."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save({"cfg": model.cfg.to_dict(), "model": state}, Path(path))


# ---------------------------------------------------------------------------------- Crab's segmentation


@dataclass(frozen=True)
class SegmentSpec:
    """How Crab cuts a clip's audio into segments (GeWu-Lab/Crab `dataset/unified_dataset.py`).

    The clip is taken as `total_seconds` long whatever its length: a "second" is
    `samples_per_second = int(n / total_seconds)` samples. For each anchor second s in `seconds`
    (default 0 .. total_seconds - 1) the segment is samples [int(max(0, s - before) * sps),
    int(min(total, s + after) * sps)), zero-padded on the left when the window starts before 0 and on
    the right otherwise, to `int((before + after) * sps)` samples.
    """

    total_seconds: int
    seconds: tuple[int, ...] | None = None
    before: float = 0.0
    after: float = 1.0

    def __post_init__(self) -> None:
        if self.total_seconds < 1 or self.before < 0 or self.after <= 0:
            raise ValueError(f"bad SegmentSpec {self}: need total_seconds >= 1, before >= 0, after > 0")
        if self.seconds is not None and not all(0 <= s < self.total_seconds for s in self.seconds):
            raise ValueError(f"bad SegmentSpec {self}: anchor seconds must lie in [0, {self.total_seconds})")

    def anchors(self) -> tuple[int, ...]:
        return tuple(range(self.total_seconds)) if self.seconds is None else self.seconds


#: Crab's evaluation-time segmentation per task (our task names), from `UnifiedTestDataset` in
#: GeWu-Lab/Crab `dataset/unified_dataset.py`: AVE, AVVP, Ref-AVS 10 x 1 s; S4, MS3, ARIG 5 x 1 s;
#: MUSIC-AVQA 10 windows of 2 s, [s - 0.5, s + 1.5) for s = 0, 6, ..., 54 of 60 s. AVSS is per sample:
#: Crab encodes only the second of the annotated frame i, i.e. `SegmentSpec(10, seconds=(i,))` (after
#: zero-padding clips shorter than 1 s to 1 s), so it has no fixed entry here.
CRAB_SEGMENTS: dict[str, SegmentSpec] = {
    "ave": SegmentSpec(10),
    "avvp": SegmentSpec(10),
    "ref_avs": SegmentSpec(10),
    "s4": SegmentSpec(5),
    "ms3": SegmentSpec(5),
    "arig": SegmentSpec(5),
    "music_avqa": SegmentSpec(60, seconds=tuple(range(0, 60, 6)), before=0.5, after=1.5),
}


def crab_segments(waveform: torch.Tensor, spec: SegmentSpec) -> torch.Tensor:
    """Cut one clip's waveform (n,) into Crab's segments (t, L) per `spec` (see `SegmentSpec`); feed
    them to `BEATs.extract_segment_features`."""
    if waveform.ndim != 1:
        raise ValueError(f"waveform must be (samples,), got shape {tuple(waveform.shape)}")
    total = spec.total_seconds
    sps = waveform.shape[0] // total
    if sps == 0:
        raise ValueError(f"a waveform of {waveform.shape[0]} samples cannot be cut into {total} seconds")
    length = int((spec.before + spec.after) * sps)
    segments = []
    for s in spec.anchors():
        start, end = max(0.0, s - spec.before), min(float(total), s + spec.after)
        seg = waveform[int(start * sps): int(end * sps)][:length]
        gap = length - seg.shape[0]
        if gap > 0:
            pad = (gap, 0) if s - spec.before < 0 else (0, gap)
            seg = F.pad(seg, pad)
        segments.append(seg)
    return torch.stack(segments)
