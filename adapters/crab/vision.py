"""The CLIP vision tower with multi-layer patch features (transformers' `CLIPVisionModel`).

Crab (GeWu-Lab/Crab `models/multimodal_encoder.py`, `VisualEncoder`) runs CLIP ViT-L/14 on 224 px
frames, takes `hidden_states[l]` for l in (14, 22, 23) and drops the CLS token ("patch" features):
(frames, 256, 1024) per layer. Frames are normalised like `CLIPImageProcessor` does for frames that
are already 224 x 224 (rescale to [0, 1], then the OpenAI CLIP mean/std).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel
from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD


def frames_to_pixels(frames: np.ndarray, size: int) -> torch.Tensor:
    """(T, H, W, 3) uint8 RGB -> (T, 3, size, size) float32 normalised CLIP input.

    Frames of another size are resized with bicubic interpolation first (the runner already
    delivers `size` x `size`, so this is the exception).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) RGB, got shape {frames.shape}")
    pixels = torch.tensor(frames, dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
    if pixels.shape[-2:] != (size, size):
        pixels = F.interpolate(pixels, size=(size, size), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    mean = torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
    return (pixels - mean) / std


class VisionTower(nn.Module):
    """CLIP vision model returning the patch tokens of selected layers."""

    def __init__(self, vision_config: dict, layers: Sequence[int]):
        super().__init__()
        config = CLIPVisionConfig(**vision_config)
        config._attn_implementation = "sdpa"
        self.tower = CLIPVisionModel(config)
        self.layers = tuple(int(l) for l in layers)

    def forward(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, S, S) -> one (N, patches, hidden) tensor per selected layer, CLS dropped."""
        dtype = next(self.tower.parameters()).dtype
        out = self.tower(pixel_values=pixels.to(dtype), output_hidden_states=True)
        return [out.hidden_states[l][:, 1:] for l in self.layers]
