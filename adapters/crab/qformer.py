"""Q-Former resampler: a fixed number of learned queries read encoder features by cross-attention.

Crab (GeWu-Lab/Crab `models/multimodal_encoder.py`, `VLProjector` / `ALProjector`) uses BLIP-2's
BERT Q-Former (LAVIS `Qformer.py`, `BertLMHeadModel`) with BERT-base width, 2 layers, cross-attention
in every layer, queries only (no text): features -> LayerNorm -> Q-Former(queries, cross-attending to
the features) -> the first `num_query` outputs. On the query-only path that model computes exactly
what transformers' `Blip2QFormerModel` computes (LayerNorm + dropout on the query embeddings, then
per layer self-attention, cross-attention, and the `*_query` feed-forward), so we use the library
module; `checkpoint.py` maps the LAVIS key names onto it.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import Blip2QFormerConfig, Blip2QFormerModel

from .config import QFormerSettings


class QFormerResampler(nn.Module):
    """(N, tokens, encoder_width) -> (N, num_queries, qformer_width)."""

    def __init__(self, settings: QFormerSettings, encoder_width: int, num_queries: int):
        super().__init__()
        config = Blip2QFormerConfig(
            hidden_size=settings.hidden_size,
            num_hidden_layers=settings.num_hidden_layers,
            num_attention_heads=settings.num_attention_heads,
            intermediate_size=settings.intermediate_size,
            layer_norm_eps=settings.layer_norm_eps,
            encoder_hidden_size=encoder_width,
            cross_attention_frequency=1,
            hidden_dropout_prob=0.1,
            attention_probs_dropout_prob=0.1,
            initializer_range=settings.initializer_range,
        )
        self.num_queries = num_queries
        self.ln = nn.LayerNorm(encoder_width)
        self.qformer = Blip2QFormerModel(config)
        self.query_tokens = nn.Parameter(torch.zeros(1, num_queries, settings.hidden_size))
        nn.init.normal_(self.query_tokens, mean=0.0, std=config.initializer_range)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = self.ln(features)
        queries = self.query_tokens.expand(features.shape[0], -1, -1)
        out = self.qformer(query_embeds=queries, encoder_hidden_states=features, return_dict=True)
        return out.last_hidden_state[:, : self.num_queries]
