"""Crab's SAM-style multi-scale mask decoder, prompted by the LLM's mask-token hidden states.

Structure and order of operations follow GeWu-Lab/Crab `models/multimodal_encoder.py` (`SegModule`,
`MaskDecoderMultiScale`, `QueryGenerator`); the two-way transformer is transformers' SAM one
(`SamTwoWayTransformer`, the same blocks as SAM's `TwoWayTransformer`, which Crab copies).

Per mask (one group of `scales x tokens_per_scale` = 2 x 3 mask tokens):
1. the tokens' last hidden states -> `text_fc` (Linear d-d, ReLU, Linear d-256) -> per scale, the
   mean of its 3 tokens (Crab weights them with fixed 1/3 scalars that are plain Python attributes,
   never registered, trained or saved) = one sparse prompt per scale;
2. CLIP patch features of the frame at the first `scales` selected layers (14 and 22 in Crab) ->
   shared neck (1x1 conv, LayerNorm2d, 3x3 conv, LayerNorm2d) -> (256, 16, 16) per scale;
3. per scale l: 300 learned AVS queries, refined by the query generator against the sparse prompt,
   plus a level embedding, attend to the image through the two-way transformer of scale l; at l > 0
   the image embedding is upsampled 2x and gated by sigmoid(mean of the previous scale's logits) + 1;
   masks = (query MLP outputs) @ (upscaled image embedding) -> 1x1-conv MLP over the 300 query maps
   -> a 1x1 classifier: 1 logit (S4/MS3/Ref-AVS) or 71 class logits (AVSS);
4. each scale's logits are resized to 112 px and summed with weight 1/scales (again fixed, unsaved
   scalars in Crab), then resized to 224 px (bilinear, align_corners=False).

`SegSettings.prompt_conditioning` (off in every preset) adds avbench's prompt path, `PromptConditioning`.

Two quirks of the public code are kept on purpose, since released weights were trained with them:
the query generator feeds the *original* AVS queries to every layer, so only its last layer affects
the output; and the random Fourier position matrices are buffers (not saved by Crab's checkpoints).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.sam.modeling_sam import SamLayerNorm, SamMaskDecoderConfig, SamTwoWayTransformer

from .config import SegSettings


def layer_norm_2d(channels: int) -> SamLayerNorm:
    """LayerNorm over channels of (B, C, H, W) maps; eps 1e-6 as Crab's LayerNorm2d."""
    return SamLayerNorm(channels, eps=1e-6, data_format="channels_first")


class RandomFourierPositions(nn.Module):
    """SAM's dense positional encoding with a fixed random Gaussian frequency matrix.

    Hand-written because transformers' `SamPositionalEmbedding` stores the matrix as a trainable
    parameter built from a `SamVisionConfig`; Crab keeps it a fixed buffer of shape (2, F).
    """

    def __init__(self, num_pos_feats: int, generator: torch.Generator | None = None):
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn((2, num_pos_feats), generator=generator))

    def forward(self, height: int, width: int) -> torch.Tensor:
        """(2F, height, width) encoding of the pixel centres, normalised to [0, 1]."""
        matrix = self.positional_encoding_gaussian_matrix
        ys = (torch.arange(height, device=matrix.device, dtype=matrix.dtype) + 0.5) / height
        xs = (torch.arange(width, device=matrix.device, dtype=matrix.dtype) + 0.5) / width
        coords = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (h, w, 2) as (x, y)
        projected = 2 * math.pi * ((2 * coords - 1) @ matrix)
        return torch.cat([projected.sin(), projected.cos()], dim=-1).permute(2, 0, 1)


class QueryAttentionLayer(nn.Module):
    """Self-attention over the queries, cross-attention to the prompt, FFN; post-norm (Crab's AttentionLayer)."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, query: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        query = self.norm1(query + self.self_attn(query, query, query, need_weights=False)[0])
        query = self.norm2(query + self.cross_attn(query, prompt, prompt, need_weights=False)[0])
        return self.norm3(query + self.ffn(query))


class QueryGenerator(nn.Module):
    def __init__(self, layers: int, dim: int, heads: int, hidden: int):
        super().__init__()
        self.layers = nn.ModuleList(QueryAttentionLayer(dim, heads, hidden) for _ in range(layers))

    def forward(self, queries: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        # Crab applies every layer to the *original* queries and keeps the last result, so only the
        # last layer matters; computing just that one gives the identical output.
        return self.layers[-1](queries, prompt)


class MLP(nn.Module):
    """Linear layers with ReLU between (SAM/MaskFormer MLP)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int, conv: bool = False):
        super().__init__()
        dims = [in_dim] + [hidden] * (num_layers - 1) + [out_dim]
        make = (lambda i, o: nn.Conv2d(i, o, kernel_size=1)) if conv else nn.Linear
        self.layers = nn.ModuleList(make(i, o) for i, o in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1:
                x = F.relu(x)
        return x


class MultiScaleMaskDecoder(nn.Module):
    """Crab's `MaskDecoderMultiScale`: AVS queries + one two-way transformer per image scale."""

    def __init__(self, seg: SegSettings):
        super().__init__()
        dim = seg.prompt_embed_dim
        sam_config = SamMaskDecoderConfig(
            hidden_size=dim, num_hidden_layers=seg.decoder_depth, num_attention_heads=seg.decoder_heads,
            mlp_dim=seg.decoder_mlp_dim, attention_downsample_rate=seg.attention_downsample_rate,
            hidden_act="relu", layer_norm_eps=1e-5,
        )
        sam_config._attn_implementation = "sdpa"
        self.transformer = nn.ModuleList(SamTwoWayTransformer(sam_config) for _ in range(seg.image_scale_nums))
        self.avs_query_tokens = nn.Embedding(seg.avs_query_num, dim)
        self.query_generator = QueryGenerator(seg.query_generator_layers, dim, seg.query_generator_heads, seg.query_generator_hidden)
        self.hyper_mlp_out = MLP(seg.avs_query_num, dim, dim // 8, 3, conv=True)
        self.hyper_mlp = MLP(dim, dim, dim // 8, 3)
        self.output_upscaling = nn.Sequential(nn.ConvTranspose2d(dim, dim // 8, 2, stride=2), layer_norm_2d(dim // 8), nn.GELU())
        self.upsample_2x = nn.Sequential(nn.ConvTranspose2d(dim, dim, 2, stride=2), layer_norm_2d(dim), nn.GELU())
        self.pe1 = RandomFourierPositions(dim // 2)
        self.level_embed = nn.Embedding(seg.image_scale_nums, dim)
        self.binary_classifier = nn.Conv2d(dim // 8, 1, kernel_size=1, bias=False)
        self.semantic_classifier = nn.Conv2d(dim // 8, seg.num_semantic_classes, kernel_size=1, bias=False)
        self.prompt_conditioning = PromptConditioning(dim, seg.num_semantic_classes) if seg.prompt_conditioning else None

    def forward(
        self,
        image: torch.Tensor,  # (G, C, h, w)
        image_pe: torch.Tensor,  # (C, h, w), used at level 0
        sparse: torch.Tensor,  # (G, 1, C)
        dense: torch.Tensor,  # (G, C, h, w)
        level: int,
        previous: torch.Tensor | None,  # (G, K, 2h, 2w) logits of the previous level
        semantic: bool,
    ) -> torch.Tensor:
        groups = sparse.shape[0]
        queries = self.avs_query_tokens.weight.unsqueeze(0).expand(groups, -1, -1)
        tokens = self.query_generator(queries, sparse) + self.level_embed.weight[level].view(1, 1, -1)
        src = image
        if level > 0:
            src = self.upsample_2x(src)
            gate = previous.mean(dim=1, keepdim=True).sigmoid() + 1  # Crab repeats it over channels
            src = gate * src
            image_pe = self.pe1(src.shape[-2], src.shape[-1]).to(src)
            dense = F.interpolate(dense.float(), size=src.shape[-2:], mode="bilinear", align_corners=False).to(dense)
        src = src + dense
        if self.prompt_conditioning is not None:
            src = self.prompt_conditioning.modulate(src, sparse[:, 0])
        b, c, h, w = src.shape
        pos = image_pe.unsqueeze(0).expand(b, -1, -1, -1)
        queries_out, keys = self.transformer[level](
            point_embeddings=tokens.unsqueeze(1), image_embeddings=src,
            image_positional_embeddings=pos, attention_similarity=None,
        )
        query_maps = self.hyper_mlp(queries_out[:, 0, : self.avs_query_tokens.num_embeddings])  # (G, Q, C/8)
        upscaled = self.output_upscaling(keys[:, 0].transpose(1, 2).reshape(b, c, h, w))  # (G, C/8, 2h, 2w)
        uc, uh, uw = upscaled.shape[1:]
        masks = (query_maps @ upscaled.reshape(b, uc, uh * uw)).reshape(b, -1, uh, uw)  # (G, Q, 2h, 2w)
        masks = self.hyper_mlp_out(masks)
        if self.prompt_conditioning is not None:  # binary at every scale; classes added after the scales are summed
            return self.prompt_conditioning.foreground(self.binary_classifier(masks), sparse[:, 0])
        return self.semantic_classifier(masks) if semantic else self.binary_classifier(masks)


class PromptConditioning(nn.Module):
    """avbench's prompt path for small decoders (`SegSettings.prompt_conditioning`; not in Crab).

    - FiLM (Perez et al. 2018) of the image embedding by the scale's prompt;
    - a prompt-dependent bias on the binary mask logit, so that a prompt can ask for an empty mask
      (Ref-AVS's null expressions);
    - AVSS maps factorised into where and what: background logit 0, class k's logit = the binary
      (sounding-object) logit + log p(k | prompt) - max_j log p(j | prompt). The per-pixel features only
      have to say "sounding object here", which S4, MS3 and Ref-AVS train too, and the class comes from
      the prompt: a pixel is the prompt's likeliest class where the binary mask is on.
      Crab's 71-way per-pixel classifier, at a small decoder's width, keeps every pixel background: the
      class mass spreads over 70 classes and background wins the argmax (docs/training.md).

    The FiLM and bias layers are zero-initialised, so binary masks start as Crab's decoder gives them.
    The decoder keeps building Crab's 71-way classifier (unused with this option), so that its RNG draw,
    and with it every later layer's initialisation, stays the same with and without the option.
    """

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        # skip_init: no draws from the global RNG, so every layer built after these gets the weights it
        # gets without them, and a recipe's steps before the decoder trains match a run without them bit for bit
        self.film = nn.utils.skip_init(nn.Linear, dim, 2 * dim)
        self.binary_bias = nn.utils.skip_init(nn.Linear, dim, 1)
        self.class_head = nn.utils.skip_init(nn.Linear, dim, num_classes - 1)  # the classes after background
        for layer in (self.film, self.binary_bias, self.class_head):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def modulate(self, image: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        """image (G, C, h, w), prompt (G, C) -> image * (1 + scale) + shift."""
        scale, shift = self.film(prompt).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return image * (1 + scale) + shift

    def foreground(self, logits: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        """Binary logits (G, 1, h, w) plus the prompt's bias; prompt (G, C)."""
        return logits + self.binary_bias(prompt).unsqueeze(-1).unsqueeze(-1)

    def semantic(self, foreground: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
        """foreground (G, 1, H, W) binary logits summed over scales, prompts (G, scales, C) -> (G, classes, H, W).

        Class k gets foreground + the scales' mean of log p(k | prompt) - max_j log p(j | prompt): where the
        scales agree on the likeliest class, it gets exactly the binary logit, so a pixel is that class where
        the binary mask is on and background (logit 0) elsewhere.
        """
        scores = self.class_head(prompts)
        relative = (scores - scores.max(dim=-1, keepdim=True).values).mean(dim=1)  # (G, K-1)
        foreground_classes = foreground + relative.unsqueeze(-1).unsqueeze(-1)
        return torch.cat([torch.zeros_like(foreground), foreground_classes], dim=1)


class SegmentationHead(nn.Module):
    """Crab's `SegModule`: mask-token states + multi-scale CLIP features -> mask logits at image size."""

    def __init__(self, seg: SegSettings, llm_hidden: int, vision_hidden: int, grid: int, image_size: int):
        super().__init__()
        dim = seg.prompt_embed_dim
        self.seg = seg
        self.grid = grid
        self.image_size = image_size
        self.text_fc = nn.Sequential(nn.Linear(llm_hidden, llm_hidden), nn.ReLU(), nn.Linear(llm_hidden, dim), nn.Dropout(0.0))
        self.no_mask_embed = nn.Embedding(1, dim)
        self.neck = nn.Sequential(
            nn.Conv2d(vision_hidden, dim, kernel_size=1, bias=False), layer_norm_2d(dim),
            nn.Conv2d(dim, dim, kernel_size=3, padding=1, bias=False), layer_norm_2d(dim),
        )
        self.pe_layer = RandomFourierPositions(dim // 2)
        self.decoder = MultiScaleMaskDecoder(seg)

    def forward(self, mask_states: torch.Tensor, image_features: list[torch.Tensor], semantic: bool,
                out_size: int | None = None) -> torch.Tensor:
        """mask_states (G, scales*tokens, d); image_features: per scale (G, grid*grid, vision_hidden).

        Returns logits (G, K, out_size, out_size), out_size = image_size by default: K = 1 (binary) or the number of
        AVSS classes. `out_size` = `seg.low_res_mask_size` returns the low-resolution logits before the final
        upsampling (a cheaper training target; docs/training.md).
        """
        seg = self.seg
        groups = mask_states.shape[0]
        if mask_states.shape[1] != seg.mask_tokens_per_mask:
            raise ValueError(f"expected {seg.mask_tokens_per_mask} mask-token states per mask, got {mask_states.shape[1]}")
        prompts = self.text_fc(mask_states).view(groups, seg.image_scale_nums, seg.token_nums_per_scale, -1).mean(dim=2)
        dim = prompts.shape[-1]
        dense = self.no_mask_embed.weight.view(1, dim, 1, 1).expand(groups, dim, self.grid, self.grid)
        image_pe = self.pe_layer(self.grid, self.grid).to(prompts)
        size = seg.low_res_mask_size
        low_res = None
        previous = None
        for level in range(seg.image_scale_nums):
            feats = image_features[level].to(prompts.dtype)
            grid = feats.transpose(1, 2).reshape(groups, feats.shape[-1], self.grid, self.grid)
            logits = self.decoder(self.neck(grid), image_pe, prompts[:, level : level + 1], dense, level, previous, semantic)
            scaled = F.interpolate(logits.float(), size=(size, size), mode="bilinear", align_corners=False) / seg.image_scale_nums
            low_res = scaled if low_res is None else low_res + scaled
            previous = logits
        conditioning = self.decoder.prompt_conditioning
        if semantic and conditioning is not None:
            low_res = conditioning.semantic(low_res, prompts)
        out_size = out_size or self.image_size
        if out_size == low_res.shape[-1]:
            return low_res
        return F.interpolate(low_res, size=(out_size, out_size), mode="bilinear", align_corners=False)


def mask_loss(logits: torch.Tensor, targets: torch.Tensor, semantic: bool) -> torch.Tensor:
    """Crab's mask losses (GeWu-Lab/Crab `models/loss.py`, `SegModule.forward`), summed over masks.

    Binary (S4/MS3/Ref-AVS): 1.0 x BCE (per-mask pixel mean) + 0.5 x Dice (scale 1000, eps 1e-6);
    logits (G, 1, H, W), targets (G, H, W) in {0, 1}. Semantic (AVSS): 1.0 x cross-entropy
    (per-mask pixel mean); logits (G, K, H, W), targets (G, H, W) class ids.
    """
    if semantic:
        return F.cross_entropy(logits.float(), targets.long(), reduction="none").mean(dim=(-2, -1)).sum()
    logits = logits[:, 0].float().flatten(1)
    targets = targets.float().flatten(1)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(dim=1).sum()
    probs, scale, eps = logits.sigmoid(), 1000.0, 1e-6
    numerator = 2 * (probs / scale * targets).sum(-1)
    denominator = (probs / scale).sum(-1) + (targets / scale).sum(-1)
    dice = (1 - (numerator + eps) / (denominator + eps)).sum()
    return 1.0 * bce + 0.5 * dice
