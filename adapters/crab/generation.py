"""Greedy batched generation from input embeddings, with left padding and a KV cache.

Own loop rather than `GenerationMixin.generate`: the mask decoder is prompted by last-layer hidden
states around the generated mask tokens, and the loop keeps exactly the states it may need as it goes
(B, steps, d: the state that predicted each generated token, plus the state that predicted the
prompt's last token) instead of all layers' states of all steps. Which of them feeds the decoder is
decided in `model.CrabModel.mask_groups` (Crab's inference takes the state that predicted the token
*before* each mask token; see there). Left padding as Crab's `prepare_multimodal_inputs` builds it:
pad positions hold the pad token's embedding with attention mask 0, and position ids count only
real tokens (cumsum of the mask - 1), so a padded row computes what it computes alone. (Crab's own
`generate` then passes only `inputs_embeds` to transformers' `generate`, which attends to every
position, pads included; its batched text-task inference therefore differs from batch size 1, which
is what this loop reproduces for any batch.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache, LlamaForCausalLM


@dataclass
class LeftPadded:
    embeds: torch.Tensor  # (B, L, d)
    attention_mask: torch.Tensor  # (B, L) 1 = real token
    position_ids: torch.Tensor  # (B, L)
    offsets: list[int]  # left padding added to each row


def left_pad(rows: list[torch.Tensor], pad_embed: torch.Tensor) -> LeftPadded:
    """Stack (L_i, d) rows to (B, max L, d), padding on the left with `pad_embed` (d,)."""
    length = max(r.shape[0] for r in rows)
    embeds, masks, offsets = [], [], []
    for row in rows:
        gap = length - row.shape[0]
        embeds.append(torch.cat([pad_embed.to(row).expand(gap, -1), row], dim=0))
        masks.append(torch.cat([torch.zeros(gap, dtype=torch.long), torch.ones(row.shape[0], dtype=torch.long)]))
        offsets.append(gap)
    attention_mask = torch.stack(masks).to(rows[0].device)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    return LeftPadded(torch.stack(embeds), attention_mask, position_ids, offsets)


@dataclass
class Generation:
    tokens: list[list[int]]  # per row, generated ids up to (not including) EOS
    states: list[torch.Tensor]  # per row, (len(tokens), d): the last hidden state that predicted each token
    #: per row, (d,): the last hidden state that predicted the prompt's last token (the state at the
    #: prompt's second-to-last position), or None for a one-token prompt, which has no such state.
    prompt_states: list[torch.Tensor | None]


@torch.no_grad()
def greedy_generate(
    lm: LlamaForCausalLM, batch: LeftPadded, max_new_tokens: int, eos_id: int, pad_id: int,
) -> Generation:
    """Greedy decoding of every row until EOS or `max_new_tokens`."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    body, head, embed = lm.model, lm.lm_head, lm.get_input_embeddings()
    rows = batch.embeds.shape[0]
    device = batch.embeds.device
    cache = DynamicCache(config=lm.config)
    attention_mask, positions = batch.attention_mask, batch.position_ids
    out = body(inputs_embeds=batch.embeds, attention_mask=attention_mask, position_ids=positions, cache=cache, use_cache=True)
    hidden = out.last_hidden_state[:, -1]
    # state that predicted the prompt's last token; a row whose prompt has one real token has none
    # (with left padding its position -2 is a pad position)
    before = out.last_hidden_state[:, -2] if batch.embeds.shape[1] > 1 else None
    real = batch.attention_mask.sum(dim=1).tolist()
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    tokens, states = [], []
    for step in range(max_new_tokens):
        next_ids = head(hidden).float().argmax(dim=-1)
        next_ids = torch.where(finished, torch.full_like(next_ids, pad_id), next_ids)
        tokens.append(next_ids)
        states.append(hidden)
        finished = finished | (next_ids == eos_id)
        if bool(finished.all()) or step == max_new_tokens - 1:
            break
        attention_mask = torch.cat([attention_mask, torch.ones_like(attention_mask[:, :1])], dim=1)
        positions = positions[:, -1:] + 1
        out = body(inputs_embeds=embed(next_ids).unsqueeze(1), attention_mask=attention_mask,
                   position_ids=positions, cache=out.cache, use_cache=True)
        hidden = out.last_hidden_state[:, -1]
    token_matrix = torch.stack(tokens, dim=1).tolist()
    state_matrix = torch.stack(states, dim=1)
    result_tokens, result_states, result_before = [], [], []
    for row in range(rows):
        ids = token_matrix[row]
        n = ids.index(eos_id) if eos_id in ids else len(ids)
        result_tokens.append(ids[:n])
        result_states.append(state_matrix[row, :n])
        result_before.append(before[row] if before is not None and real[row] > 1 else None)
    return Generation(result_tokens, result_states, result_before)
