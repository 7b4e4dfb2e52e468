"""The Crab-style model: CLIP + BEATs -> Q-Formers -> projections -> LLaMA (with I-LoRA) -> text,
and mask-token hidden states -> SAM-style decoder -> per-frame masks.

Composition follows GeWu-Lab/Crab `models/unified_arch.py` / `unified_llama.py`:
- video/image: CLIP `hidden_states[l]` patch tokens for each selected layer; the visual Q-Former
  (shared across layers) + MLP turn the LAST selected layer's tokens of each frame into
  `visual_queries` LLM tokens; the first `image_scale_nums` layers are the mask decoder's features.
- audio: Crab's segments -> BEATs (each segment alone) -> audio Q-Former + MLP: `audio_queries`
  tokens per segment.
- the prompt's `<video>`, `<image>`, `<audio>` placeholders are replaced by those tokens.
- masks: every group of 6 mask tokens (2 scales x 3) the model emits is one mask; group k is
  decoded against frame k's features. (Crab asks for one frame per prompt; avbench's segmentation
  prompts ask for all frames at once, one group per frame in order.) At inference each mask token
  brings the state that predicted the token before it, as Crab's inference (`mask_groups`).

The LLM stays a plain `LlamaForCausalLM` (inside a peft model when I-LoRA is on): usable on its own,
e.g. for lm-eval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from .beats import BEATs, BEATsConfig
from .config import CrabConfig
from .generation import Generation, LeftPadded, greedy_generate, left_pad
from .ilora import ILoRAConfig, apply_ilora
from .mask_decoder import SegmentationHead, mask_loss
from .projector import build_projector
from .prompts import IGNORE_INDEX, splice_media
from .qformer import QFormerResampler
from .tokenizer import MASK_TOKENS
from .vision import VisionTower


@dataclass
class TokenIds:
    """Ids the model needs from its tokenizer."""

    added: dict[str, int]  # Crab's 17 added tokens
    pad: int
    eos: int

    @property
    def mask_ids(self) -> list[int]:
        return [self.added[t] for t in MASK_TOKENS]

    def to_dict(self) -> dict:
        return {"added": dict(self.added), "pad": self.pad, "eos": self.eos}


@dataclass
class SampleInputs:
    """One sample's model inputs before encoding (`CrabModel.prepare_batch`)."""

    input_ids: Sequence[int]
    pixels: torch.Tensor | None  # (T, 3, S, S) normalised frames
    segments: torch.Tensor | None  # (n_segments, samples) audio at 16 kHz
    is_image: bool = False  # the frame fills `<image>` instead of `<video>`
    labels: Sequence[int] | None = None  # training targets, IGNORE_INDEX on the prompt


@dataclass
class PreparedSample:
    """One sample ready for the LLM: spliced embeddings plus what the mask decoder needs."""

    embeds: torch.Tensor  # (L, d)
    labels: torch.Tensor | None  # (L,) or None (inference)
    token_ids: torch.Tensor  # (L,) -1 on media tokens
    frame_features: list[torch.Tensor] | None  # per decoder scale: (T, grid*grid, vision_hidden)
    media_counts: dict[str, int] = field(default_factory=dict)


@dataclass
class CrabForwardOutput:
    loss: torch.Tensor | None
    lm_loss: torch.Tensor | None
    mask_loss: torch.Tensor | None
    logits: torch.Tensor  # (B, L, V)
    mask_logits: list[torch.Tensor | None]  # per sample (G, K, S, S)


class CrabModel(nn.Module):
    def __init__(self, config: CrabConfig, vocab_size: int, token_ids: TokenIds):
        super().__init__()
        self.config = config
        self.token_ids = token_ids
        q = config.qformer
        llm_config = LlamaConfig(**{**config.llm, "vocab_size": vocab_size})
        llm_config._attn_implementation = "sdpa"
        lm = LlamaForCausalLM(llm_config)
        if config.ilora.enabled:
            ilora = config.ilora
            self.llm: nn.Module = apply_ilora(lm, ILoRAConfig(r=ilora.r, alpha=ilora.alpha, dropout=ilora.dropout,
                                                               n_heads=ilora.n_heads, target_modules=ilora.target_modules))
        else:
            self.llm = lm
        self.vision = VisionTower(config.vision, config.vision_layers)
        self.visual_resampler = QFormerResampler(q, config.vision_hidden, q.visual_queries)
        self.visual_projector = build_projector(q.projector_depth, q.hidden_size, config.llm_hidden)
        self.audio_encoder = BEATs(BEATsConfig.from_dict(config.audio))
        self.audio_resampler = QFormerResampler(q, config.audio_hidden, q.audio_queries)
        self.audio_projector = build_projector(q.projector_depth, q.hidden_size, config.llm_hidden)
        self.seg = SegmentationHead(config.seg, config.llm_hidden, config.vision_hidden, config.patch_grid, config.image_size)
        if config.time_embeddings:
            # zero-initialised: training starts from the model without them
            self.visual_time = nn.Embedding(config.time_embeddings, config.llm_hidden)
            self.audio_time = nn.Embedding(config.time_embeddings, config.llm_hidden)
            nn.init.zeros_(self.visual_time.weight)
            nn.init.zeros_(self.audio_time.weight)

    # ---- parts ------------------------------------------------------------------------------------
    @property
    def causal_lm(self) -> LlamaForCausalLM:
        """The LLaMA model itself (inside the peft wrapper when I-LoRA is on)."""
        return self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm

    @property
    def device(self) -> torch.device:
        return self.causal_lm.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.causal_lm.lm_head.weight.dtype

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.causal_lm.get_input_embeddings()(ids.to(self.device))

    def encode_frames(self, pixels: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(T, 3, S, S) -> LLM tokens (T * visual_queries, d) and the decoder's per-scale features."""
        layers = self.vision(pixels.to(self.device))
        resampled = self.visual_resampler(layers[-1])  # (T, Q, qformer)
        tokens = self.visual_projector(resampled).reshape(-1, self.config.llm_hidden)
        return tokens, layers[: self.config.seg.image_scale_nums]

    def encode_audio(self, segments: torch.Tensor) -> torch.Tensor:
        """(n_segments, samples) -> LLM tokens (n_segments * audio_queries, d)."""
        features = self.audio_encoder.extract_segment_features(segments.to(self.device, torch.float32))
        resampled = self.audio_resampler(features.to(self.dtype))
        return self.audio_projector(resampled).reshape(-1, self.config.llm_hidden)

    def add_time(self, tokens: torch.Tensor, n_positions: int, table: str) -> torch.Tensor:
        """tokens (n_positions * queries, d) of one video or audio track + the time embedding of each
        frame / segment index (`config.time_embeddings`; unchanged when 0)."""
        if not self.config.time_embeddings:
            return tokens
        if n_positions > self.config.time_embeddings:
            raise ValueError(f"{n_positions} frames or audio segments, but time embeddings for {self.config.time_embeddings}")
        embedding = getattr(self, table).weight[:n_positions].to(tokens.dtype)
        return (tokens.view(n_positions, -1, tokens.shape[-1]) + embedding[:, None]).reshape(tokens.shape)

    # ---- inputs ------------------------------------------------------------------------------------
    def prepare(
        self,
        input_ids: Sequence[int],
        pixels: torch.Tensor | None,
        segments: torch.Tensor | None,
        is_image: bool = False,
        labels: Sequence[int] | None = None,
    ) -> PreparedSample:
        """Encode one sample's media and splice it into its token embeddings."""
        return self.prepare_batch([SampleInputs(input_ids, pixels, segments, is_image, labels)])[0]

    def prepare_batch(self, items: Sequence["SampleInputs"]) -> list[PreparedSample]:
        """`prepare` for several samples, their media encoded together: all frames in one CLIP (and
        visual Q-Former) call, all audio segments of one length in one BEATs (and audio Q-Former) call,
        then split per sample. Every module involved treats its batch items independently, so this
        gives what per-sample encoding gives (a test checks it to 1e-5 in float32), with fewer, larger
        kernel launches."""
        frame_items = [i for i, item in enumerate(items) if item.pixels is not None]
        frames: dict[int, tuple[torch.Tensor, list[torch.Tensor]]] = {}
        if frame_items:
            counts = [items[i].pixels.shape[0] for i in frame_items]
            tokens, layers = self.encode_frames(torch.cat([items[i].pixels.to(self.device) for i in frame_items]))
            per_frame = self.config.qformer.visual_queries
            token_parts = tokens.split([n * per_frame for n in counts])
            layer_parts = [layer.split(counts) for layer in layers]
            for k, i in enumerate(frame_items):
                part = token_parts[k] if items[i].is_image else self.add_time(token_parts[k], counts[k], "visual_time")
                frames[i] = (part, [parts[k] for parts in layer_parts])
        audio: dict[int, torch.Tensor] = {}
        by_length: dict[int, list[int]] = {}  # segments of different lengths cannot share a batch
        for i, item in enumerate(items):
            if item.segments is not None:
                by_length.setdefault(int(item.segments.shape[-1]), []).append(i)
        for group in by_length.values():
            counts = [items[i].segments.shape[0] for i in group]
            tokens = self.encode_audio(torch.cat([items[i].segments for i in group]))
            for i, n, part in zip(group, counts, tokens.split([n * self.config.qformer.audio_queries for n in counts])):
                audio[i] = part if items[i].is_image else self.add_time(part, n, "audio_time")
        prepared = []
        for i, item in enumerate(items):
            media: dict[str, torch.Tensor] = {}
            frame_features = None
            if i in frames:
                media["<image>" if item.is_image else "<video>"], frame_features = frames[i]
            if i in audio:
                media["<audio>"] = audio[i]
            spliced = splice_media(item.input_ids, self.embed_tokens, self.token_ids.added, media, item.labels)
            prepared.append(PreparedSample(spliced.embeds, spliced.labels, spliced.token_ids, frame_features, spliced.media_counts))
        return prepared

    def _pad(self, samples: Sequence[PreparedSample]) -> LeftPadded:
        pad = self.embed_tokens(torch.tensor([self.token_ids.pad]))[0]
        return left_pad([s.embeds.to(self.device, self.dtype) for s in samples], pad)

    # ---- masks -------------------------------------------------------------------------------------
    def decode_masks(self, mask_states: torch.Tensor, frame_features: list[torch.Tensor], frames: Sequence[int], semantic: bool,
                     size: int | None = None) -> torch.Tensor:
        """mask_states (G * 6, d): groups of mask-token states in order; group g is decoded against
        frame `frames[g]`. Returns logits (G, K, S, S), K = 1 or the number of AVSS classes, S = `size`
        (default: the image size)."""
        per = self.config.seg.mask_tokens_per_mask
        groups = mask_states.shape[0] // per
        if groups != len(frames) or mask_states.shape[0] % per:
            raise ValueError(f"{mask_states.shape[0]} mask-token states do not make {len(frames)} groups of {per}")
        index = torch.as_tensor(list(frames), device=frame_features[0].device)
        features = [f.index_select(0, index) for f in frame_features]
        return self.seg(mask_states.reshape(groups, per, -1), features, semantic, size)

    def mask_groups(self, token_ids: Sequence[int], states: torch.Tensor, prompt_state: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder inputs of the mask tokens among the generated `token_ids`, in order, cut to whole
        groups of 6: (G * 6, d).

        `states[j]` is the state that predicted generated token j and `prompt_state` the one that
        predicted the prompt's last token (`generation.Generation`). With `seg.inference_state_offset`
        2 (default), mask token j gets the state that predicted token j - 1, i.e. the state two
        positions before it, as Crab's inference does: `UnifiedForCausalLM.generate_avs`
        (`models/unified_llama.py`) pairs `output_ids[:, 1:]` (generated tokens 1, 2, ...) with
        `output.hidden_states` (steps 0, 1, ...; step j's last layer is the state that predicted token j),
        and its step 0 entry holds the whole prompt, whose last state is `prompt_state`. With 1, mask
        token j gets `states[j]`, the position Crab trains on. A mask token that has no such state (the
        first generated token of a one-token prompt) is left out.
        """
        mask_ids = set(self.token_ids.mask_ids)
        rows = [j for j, t in enumerate(token_ids) if t in mask_ids]
        if self.config.seg.inference_state_offset == 2:
            if prompt_state is None:
                rows = [j - 1 for j in rows if j > 0]
            else:
                states = torch.cat([prompt_state.reshape(1, -1).to(states), states])  # now row j predicted token j - 1
        per = self.config.seg.mask_tokens_per_mask
        rows = rows[: len(rows) - len(rows) % per]
        return states[rows]

    # ---- training forward --------------------------------------------------------------------------
    def forward(
        self,
        samples: Sequence[PreparedSample],
        mask_frames: Sequence[Sequence[int] | None] | None = None,
        mask_targets: Sequence[torch.Tensor | None] | None = None,
        semantic: Sequence[bool] | None = None,
        mask_groups: Sequence[Sequence[int] | None] | None = None,
        mask_size: int | None = None,
    ) -> CrabForwardOutput:
        """Teacher-forced pass over prompt + answer (the samples' `labels` mark the answer).

        LM loss: next-token cross-entropy over labelled positions (mean, as HF). Masks: for sample i,
        the first `6 * len(mask_frames[i])` mask tokens of its sequence make the groups (the state one
        position before each mask token, as Crab), group g decoded against frame `mask_frames[i][g]`;
        with `mask_targets[i]` (G, S, S) the mask loss of `mask_decoder.mask_loss` is added (summed
        over masks, as Crab). `semantic[i]`: AVSS class logits instead of one binary logit.
        `mask_groups[i]`: which of the answer's groups (0 = first) are decoded, instead of the first
        `len(mask_frames[i])`, e.g. a sample of a clip's annotated frames (training on fewer masks).
        `mask_size`: the side of the logits (and targets), default the image size.
        """
        batch = self._pad(samples)
        out = self.causal_lm.model(inputs_embeds=batch.embeds, attention_mask=batch.attention_mask, position_ids=batch.position_ids)
        hidden = out.last_hidden_state
        logits = self.causal_lm.lm_head(hidden)
        lm_loss = None
        if all(s.labels is not None for s in samples):
            labels = torch.full(batch.attention_mask.shape, IGNORE_INDEX, dtype=torch.long, device=self.device)
            for row, (sample, offset) in enumerate(zip(samples, batch.offsets)):
                labels[row, offset:] = sample.labels.to(self.device)
            lm_loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX)
        mask_logits: list[torch.Tensor | None] = [None] * len(samples)
        total_mask_loss = None
        mask_ids = set(self.token_ids.mask_ids)
        for row, sample in enumerate(samples):
            frames = mask_frames[row] if mask_frames is not None else None
            if not frames:
                continue
            ids = sample.token_ids.tolist()
            offset = batch.offsets[row]
            # the state that predicts a mask token sits one position before it
            positions = [offset + i - 1 for i, t in enumerate(ids) if t in mask_ids]
            states = hidden[row, positions]
            per = self.config.seg.mask_tokens_per_mask
            chosen = mask_groups[row] if mask_groups is not None and mask_groups[row] is not None else range(len(frames))
            if len(chosen) != len(frames) or (len(chosen) and max(chosen) >= states.shape[0] // per):
                raise ValueError(f"sample {row}: mask groups {list(chosen)} for frames {list(frames)}, "
                                 f"but the answer holds {states.shape[0] // per} groups")
            rows = torch.as_tensor([g * per + k for g in chosen for k in range(per)], dtype=torch.long, device=states.device)
            states = states.index_select(0, rows)
            is_semantic = bool(semantic[row]) if semantic is not None else False
            mask_logits[row] = self.decode_masks(states, sample.frame_features, frames, is_semantic, mask_size)
            if mask_targets is not None and mask_targets[row] is not None:
                loss = mask_loss(mask_logits[row], mask_targets[row].to(self.device), is_semantic)
                total_mask_loss = loss if total_mask_loss is None else total_mask_loss + loss
        parts = [l for l in (lm_loss, total_mask_loss) if l is not None]
        return CrabForwardOutput(sum(parts) if parts else None, lm_loss, total_mask_loss, logits, mask_logits)

    # ---- inference ---------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, samples: Sequence[PreparedSample], max_new_tokens: int) -> Generation:
        return greedy_generate(self.causal_lm, self._pad(samples), max_new_tokens, self.token_ids.eos, self.token_ids.pad)


def token_ids_from_tokenizer(tokenizer) -> TokenIds:
    from .tokenizer import crab_token_ids

    added = crab_token_ids(tokenizer)
    if tokenizer.eos_token_id is None or tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer needs EOS and PAD tokens")
    return TokenIds(added=added, pad=int(tokenizer.pad_token_id), eos=int(tokenizer.eos_token_id))
