"""`avbench-crab`: the Crab model's language model as an lm-evaluation-harness model type.

What it evaluates: the LLaMA inside `CrabModel` with its I-LoRA adapters (`CrabModel.causal_lm`), fed
text only. No media is encoded and no placeholder is spliced in: the vision and audio towers, the
Q-Formers and the mask decoder are loaded with the checkpoint but never run. Every I-LoRA layer still
routes: its router computes softmax(R x) per token from the layer's input, with no modality flag, so a
text token is mixed over the heads exactly as the same hidden state would be inside an audio-visual
prompt; what changes without media is only that no media tokens exist to attend to. Running the same
lm-eval tasks on the base LLaMA (`--model hf`) and on a Crab checkpoint therefore measures what AV
instruction tuning did to language ability.

Text is not wrapped in Crab's chat template: lm-eval's tasks bring their own prompts (`--apply_chat_template`
is not supported). Tokens: the checkpoint's own tokenizer; a BOS token is prepended where the tokenizer
would prepend one (LLaMA-2's does, crab-tiny's does not), as lm-eval's `hf` model does by default;
`add_bos_token=True|False` overrides. Requests follow lm-eval's `TemplateLM` conventions: a context's
trailing spaces move to the continuation, an empty context is the prefix token (BOS, else EOS),
`loglikelihood_rolling` scores disjoint windows of the model's maximum length. `generate_until` decodes
greedily (a request asking for sampling is refused), stops at EOS, at any `until` string or after
`max_gen_toks` tokens (default 256), and cuts the text at the first `until` string.

Registered with lm-eval's model registry under `avbench-crab` when this module is imported; lm-eval
0.4 loads no plugins by itself, so `python -m avbench.lm_eval ...` (avbench/lm_eval.py) registers it
and then runs lm-eval's own command line. Usage and the results mapping: docs/lm-eval.md.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
import lm_eval.models  # noqa: F401  (lm-eval's built-in model types first: see avbench/lm_eval.py, register)
from lm_eval import utils as lm_utils
from lm_eval.api.instance import Instance
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text

from avbench.errors import AVBenchError

from .adapter import default_checkpoint, resolve_device, resolve_dtype
from .checkpoint import load_checkpoint

MODEL_NAME = "avbench-crab"
DEFAULT_MAX_GEN_TOKS = 256
log = logging.getLogger(__name__)


def _flag(value: bool | str | None, name: str) -> bool | None:
    """model_args arrive as strings from the command line ("True", "false", ...)."""
    if value is None or isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no"):
        return False
    raise AVBenchError(f"model_args {name}={value!r}: expected True or False")


def _batch_size(value: int | str | None) -> int:
    try:
        size = int(value) if value is not None else 1
    except (TypeError, ValueError):
        raise AVBenchError(f"avbench-crab takes an integer batch size, got {value!r} ('auto' is not supported)") from None
    if size < 1:
        raise AVBenchError(f"batch size must be >= 1, got {size}")
    return size


def _device(name: str | None) -> torch.device:
    """lm-eval's command line passes --device cuda:0 unless told otherwise, also on a machine without a GPU;
    as lm-eval's `hf` model does, an unavailable CUDA device then means the CPU (with a warning)."""
    if name and name.startswith("cuda") and not torch.cuda.is_available():
        log.warning("avbench-crab: device %r requested but CUDA is not available; running on the CPU", name)
        name = "cpu"
    return resolve_device(name)


@register_model(MODEL_NAME)
class CrabLM(TemplateLM):
    """lm-eval model_args: `checkpoint` (avbench's layout or the official release; default: the bundled crab-tiny), `device`
    (cpu, cuda, cuda:N, auto), `dtype` (auto, float32, bfloat16, float16), `batch_size` (integer),
    `max_length` (tokens, default the LLM's max_position_embeddings), `max_gen_toks` (default 256),
    `add_bos_token` (default: as the tokenizer does)."""

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        device: str | None = "auto",
        dtype: str | None = "auto",
        batch_size: int | str | None = 1,
        max_batch_size: int | None = None,  # lm-eval passes it to every model type; used with batch_size auto only
        max_length: int | str | None = None,
        max_gen_toks: int | str = DEFAULT_MAX_GEN_TOKS,
        add_bos_token: bool | str | None = None,
    ) -> None:
        super().__init__()
        if checkpoint is None:
            checkpoint = default_checkpoint()
        self._device = _device(device)
        loaded = load_checkpoint(checkpoint, device=self._device, dtype=resolve_dtype(dtype, self._device))
        self.checkpoint = loaded
        self.lm = loaded.model.causal_lm.eval()  # the LLaMA with its I-LoRA layers in place
        self.tokenizer = loaded.tokenizer
        self.batch_size = _batch_size(batch_size)
        self.max_length = int(max_length) if max_length is not None else int(self.lm.config.max_position_embeddings)
        self.max_gen_toks = int(max_gen_toks)
        self.add_bos_token = _flag(add_bos_token, "add_bos_token")
        if self.add_bos_token is None:  # as the tokenizer's own default (lm-eval's hf model does the same)
            probe = self.tokenizer("a")["input_ids"]
            self.add_bos_token = bool(probe) and probe[0] == self.tokenizer.bos_token_id

    # ---- tokens ------------------------------------------------------------------------------------
    @property
    def eot_token_id(self) -> int:
        return int(self.tokenizer.eos_token_id)

    @property
    def prefix_token_id(self) -> int:
        bos = self.tokenizer.bos_token_id
        return int(bos) if bos is not None else self.eot_token_id

    @property
    def tokenizer_name(self) -> str:
        return f"avbench-crab-{self.checkpoint.checkpoint_hash}"

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs: Any) -> list[int]:
        ids = list(self.tokenizer(string, add_special_tokens=False)["input_ids"])
        with_bos = self.add_bos_token if add_special_tokens is None else add_special_tokens
        if with_bos and self.tokenizer.bos_token_id is not None and ids[:1] != [self.tokenizer.bos_token_id]:
            ids = [int(self.tokenizer.bos_token_id)] + ids
        return ids

    def tok_decode(self, tokens: Iterable[int]) -> str:
        return self.tokenizer.decode(list(tokens), skip_special_tokens=True)

    # ---- scoring -----------------------------------------------------------------------------------
    @torch.inference_mode()
    def _logprobs(self, rows: Sequence[list[int]]) -> list[torch.Tensor]:
        """Per row, (len(row), vocab) float32 log-softmax of the next token after each position.

        Rows are right-padded: with a causal mask a row's real positions never see its padding."""
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        logits = self.lm(input_ids=ids.to(self._device), attention_mask=mask.to(self._device)).logits
        return [F.log_softmax(logits[i, : len(row)].float(), dim=-1).cpu() for i, row in enumerate(rows)]

    def _loglikelihood_tokens(
        self, requests: list[tuple[tuple[str, str] | None, list[int], list[int]]], disable_tqdm: bool = False, **kwargs: Any
    ) -> list[tuple[float, bool]]:
        """(logprob of the continuation, whether greedy decoding would produce it) per request.

        The model reads context + continuation minus its last token, cut on the left to max_length."""
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        inputs = [(context + continuation)[-(self.max_length + 1):][:-1] for _, context, continuation in requests]
        order = sorted(range(len(requests)), key=lambda i: -len(inputs[i]))  # similar lengths share a batch
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            for i, logprobs in zip(chunk, self._logprobs([inputs[i] for i in chunk])):
                continuation = requests[i][2]
                scored = logprobs[-len(continuation):]  # the positions that predict the continuation
                target = torch.tensor(continuation)
                logprob = float(scored.gather(1, target[:, None]).sum())
                greedy = bool((scored.argmax(dim=-1) == target).all())
                results[i] = (logprob, greedy)
                if requests[i][0] is not None:
                    self.cache_hook.add_partial("loglikelihood", requests[i][0], results[i])
        return results  # type: ignore[return-value]

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False) -> list[float]:
        """Log-likelihood of each whole text, conditioned on the prefix token, over disjoint windows."""
        results = []
        for request in requests:
            (text,) = request.args
            windows = [
                (None, context, continuation)
                for context, continuation in map(lm_utils.make_disjoint_window, lm_utils.get_rolling_token_windows(
                    token_list=self.tok_encode(text, add_special_tokens=False), prefix_token=self.prefix_token_id,
                    max_seq_len=self.max_length, context_len=1,
                ))
            ]
            total = sum(logprob for logprob, _ in self._loglikelihood_tokens(windows)) if windows else 0.0
            results.append(total)
            self.cache_hook.add_partial("loglikelihood_rolling", (text,), total)
        return results

    # ---- generation --------------------------------------------------------------------------------
    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        """Greedy continuations, batched by identical generation settings (left padding)."""
        results: list[str | None] = [None] * len(requests)
        eos = self.tokenizer.decode([self.eot_token_id], skip_special_tokens=False)
        groups: dict[str, list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(repr(sorted(request.args[1].items())), []).append(i)
        for members in groups.values():
            settings = normalize_gen_kwargs(requests[members[0]].args[1], self.max_gen_toks)
            if settings.get("do_sample"):
                raise AVBenchError("avbench-crab decodes greedily only; the task asks for sampling "
                                   "(pass --gen_kwargs do_sample=False to evaluate it greedily)")
            until = handle_stop_sequences(settings.get("until"), eos=eos)
            budget = int(settings["max_gen_toks"])
            if budget >= self.max_length:
                raise AVBenchError(f"max_gen_toks {budget} leaves no room for a context in max_length {self.max_length}")
            members = sorted(members, key=lambda i: -len(requests[i].args[0]))
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                contexts = [self.tok_encode(requests[i].args[0])[-(self.max_length - budget):] for i in chunk]
                for i, text in zip(chunk, self._greedy(contexts, budget, until)):
                    results[i] = postprocess_generated_text(text, until, None)
                    self.cache_hook.add_partial("generate_until", requests[i].args, results[i])
        return results  # type: ignore[return-value]

    @torch.inference_mode()
    def _greedy(self, contexts: Sequence[list[int]], max_new_tokens: int, until: list[str]) -> list[str]:
        """Decoded greedy continuations of left-padded `contexts` (transformers' generate: KV cache,
        position ids from the attention mask, a row stops at EOS; the batch at the stop strings)."""
        length = max(len(c) for c in contexts)
        ids = torch.full((len(contexts), length), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(contexts), length), dtype=torch.long)
        for i, context in enumerate(contexts):
            ids[i, length - len(context):] = torch.tensor(context)
            mask[i, length - len(context):] = 1
        out = self.lm.generate(
            input_ids=ids.to(self._device), attention_mask=mask.to(self._device), max_new_tokens=max_new_tokens,
            do_sample=False, num_beams=1, eos_token_id=self.eot_token_id, pad_token_id=self.tokenizer.pad_token_id,
            stop_strings=[u for u in until if u] or None, tokenizer=self.tokenizer,
        )
        return [self.tok_decode(row[length:].tolist()) for row in out]
