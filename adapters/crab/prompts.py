"""Prompt assembly: the chat wrapping Crab uses, tokenisation, and splicing media features into the
token embeddings in place of the `<video>` / `<audio>` / `<image>` placeholders.

Crab (GeWu-Lab/Crab `dataset/unified_dataset.py`, `__getitem__`) wraps each instruction with the
tokenizer's chat template, system message "You are a helpful assistant.", and appends `</s>` to
training answers. For LLaMA-2-chat that template renders
`<s>[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{instruction} [/INST]` (content stripped); `chat_prompt`
writes exactly that string, so the tiny tokenizer gets the same framing. Tokens are taken without
adding special tokens (`<s>` is in the text), as Crab's `tokenizer.tokenize` + `convert_tokens_to_ids`.

`splice_media` follows `prepare_multimodal_inputs` of `models/unified_arch.py`: the text between
placeholders is embedded, each placeholder is replaced by its media's projected tokens (labels -100
there), and the start/end tokens around it stay ordinary tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from transformers import PreTrainedTokenizerBase

from avbench.errors import AVBenchError

from .tokenizer import MASK_TOKENS, PLACEHOLDERS

IGNORE_INDEX = -100


def chat_prompt(instruction: str, system: str, bos: str = "<s>") -> str:
    """LLaMA-2-chat's rendering of [system, user] with no assistant turn yet."""
    content = f"<<SYS>>\n{system}\n<</SYS>>\n\n{instruction}".strip()
    return f"{bos}[INST] {content} [/INST]"


def encode(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def mask_answer(n_masks: int) -> str:
    """The mask-token text for `n_masks` masks: each `<mask_start><mask_0>..<mask_5><mask_end>`."""
    return " ".join("<mask_start>" + "".join(MASK_TOKENS) + "<mask_end>" for _ in range(n_masks))


@dataclass
class SplicedPrompt:
    embeds: torch.Tensor  # (L', d)
    labels: torch.Tensor | None  # (L',) with IGNORE_INDEX on media tokens, or None
    token_ids: torch.Tensor  # (L',) the ids, -1 where a media token sits
    media_counts: dict[str, int]  # placeholder -> number of tokens inserted


def splice_media(
    ids: list[int] | torch.Tensor,
    embed: Callable[[torch.Tensor], torch.Tensor],
    placeholder_ids: Mapping[str, int],
    media: Mapping[str, torch.Tensor],
    labels: list[int] | torch.Tensor | None = None,
) -> SplicedPrompt:
    """Replace every placeholder token in `ids` by the (n, d) tensor `media[placeholder]`.

    A placeholder in the text without media is an error (the model would read a bare token where the
    prompt promises a video); media without a placeholder is allowed (Crab passes the frame for the
    mask decoder that way).
    """
    ids = torch.as_tensor(ids, dtype=torch.long)
    by_id = {placeholder_ids[p]: p for p in PLACEHOLDERS}
    pieces: list[torch.Tensor] = []
    label_pieces: list[torch.Tensor] = []
    id_pieces: list[torch.Tensor] = []
    counts: dict[str, int] = {}
    label_tensor = torch.as_tensor(labels, dtype=torch.long) if labels is not None else None
    start = 0
    positions = [i for i, t in enumerate(ids.tolist()) if t in by_id]
    for pos in positions + [len(ids)]:
        if pos > start:
            pieces.append(embed(ids[start:pos]))
            id_pieces.append(ids[start:pos])
            if label_tensor is not None:
                label_pieces.append(label_tensor[start:pos])
        if pos == len(ids):
            break
        name = by_id[int(ids[pos])]
        if name not in media or media[name] is None:
            raise AVBenchError(f"the prompt holds {name} but the sample has no media for it")
        feats = media[name]
        pieces.append(feats.to(pieces[0].dtype if pieces else feats.dtype))
        id_pieces.append(torch.full((feats.shape[0],), -1, dtype=torch.long))
        if label_tensor is not None:
            label_pieces.append(torch.full((feats.shape[0],), IGNORE_INDEX, dtype=torch.long))
        counts[name] = counts.get(name, 0) + feats.shape[0]
        start = pos + 1
    dtype = pieces[0].dtype
    return SplicedPrompt(
        embeds=torch.cat([p.to(dtype) for p in pieces], dim=0),
        labels=torch.cat(label_pieces) if label_tensor is not None else None,
        token_ids=torch.cat(id_pieces),
        media_counts=counts,
    )
