"""Crab checkpoints: our layout, the official release layout, detection, strict loading.

Our layout (`save_checkpoint` / `write_random_checkpoint`), one directory:
    config.json          {"format": "avbench-crab", "format_version": 1, "config": {...}, "vocab_size": N}
    model.safetensors    the whole `CrabModel` state dict (I-LoRA weights included)
    tokenizer.json, tokenizer_config.json, ...   the tokenizer with Crab's 17 added tokens

The official layout (the public release, see `official.py` and docs/crab.md) is detected by its
`finetune_weights.bin`. `load_checkpoint` picks the reader; every reader checks the weights against the
model: missing, unexpected or mis-shaped keys raise `AVBenchError` listing all of them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors.torch import load_file, save_file
from transformers import PreTrainedTokenizerBase

from avbench.errors import AVBenchError, read_json

from .config import CrabConfig, preset
from .model import CrabModel, token_ids_from_tokenizer
from .tokenizer import build_tiny_tokenizer, load_tokenizer

FORMAT = "avbench-crab"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
OFFICIAL_MARKER = "finetune_weights.bin"


@dataclass
class LoadedCrab:
    model: CrabModel
    tokenizer: PreTrainedTokenizerBase
    config: CrabConfig
    layout: str  # "avbench" or "official"
    path: Path
    checkpoint_hash: str
    extra: dict[str, Any] = field(default_factory=dict)


def file_digest(paths: list[Path], chunk: int = 1 << 20) -> str:
    """sha256 over the files' bytes, in order (first 16 hex digits)."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    return digest.hexdigest()[:16]


def check_state_dict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], where: str | Path) -> None:
    """Raise listing every missing, unexpected and mis-shaped key of `state` against `model`."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or shapes:
        parts = [f"{len(keys)} {what}: {', '.join(keys)}" for what, keys in (
            ("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)) if keys]
        raise AVBenchError(f"{where}: checkpoint does not match the model; " + "; ".join(parts))


def build_model(config: CrabConfig, tokenizer: PreTrainedTokenizerBase, device: torch.device | str = "cpu",
                dtype: torch.dtype = torch.float32, vocab_size: int | None = None) -> CrabModel:
    """A randomly initialised model for `config` and `tokenizer`, built directly on `device` in `dtype`.

    `vocab_size` (default: the tokenizer's length) may exceed the tokenizer, e.g. to give a model built
    with the small offline tokenizer LLaMA-2's 32000 + 17 rows (`tools/gpu_check.py`)."""
    if vocab_size is not None and vocab_size < len(tokenizer):
        raise AVBenchError(f"vocab_size {vocab_size} is smaller than the tokenizer ({len(tokenizer)} tokens)")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = CrabModel(config, vocab_size or len(tokenizer), token_ids_from_tokenizer(tokenizer))
    finally:
        torch.set_default_dtype(previous)
    return model.eval()


def _saveable(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous tensors; tensors sharing storage (BEATs' shared position table) are copied,
    since safetensors refuses shared storage."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in state.items():
        value = value.detach().to("cpu").contiguous()
        ptr = value.untyped_storage().data_ptr()
        if ptr in seen:
            value = value.clone()
        seen.add(value.untyped_storage().data_ptr())
        out[key] = value
    return out


def save_checkpoint(model: CrabModel, tokenizer: PreTrainedTokenizerBase, directory: str | Path) -> Path:
    """Write `model` and `tokenizer` in our layout."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": model.config.to_dict(), "vocab_size": len(tokenizer)}
    (directory / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    save_file(_saveable(model.state_dict()), str(directory / WEIGHTS_FILE), metadata={"format": FORMAT})
    tokenizer.save_pretrained(str(directory))
    return directory


def write_random_checkpoint(directory: str | Path, preset_name: str = "tiny", seed: int = 0) -> Path:
    """A randomly initialised model (seeded) in our layout: for tests and smoke runs.

    The tiny preset gets its own offline-built tokenizer; the full preset needs a LLaMA-2 tokenizer
    and is not written this way.
    """
    if preset_name != "tiny":
        raise AVBenchError(f"write_random_checkpoint supports the tiny preset only (got {preset_name!r}): "
                           "a full-size model needs the LLaMA-2 tokenizer of a release")
    tokenizer = build_tiny_tokenizer()
    config = preset("tiny")
    config.llm["vocab_size"] = len(tokenizer)
    torch.manual_seed(seed)
    model = build_model(config, tokenizer)
    return save_checkpoint(model, tokenizer, directory)


def detect_layout(directory: Path) -> str:
    if (directory / CONFIG_FILE).is_file():
        meta = read_json(directory / CONFIG_FILE)
        if isinstance(meta, dict) and meta.get("format") == FORMAT:
            return "avbench"
    if (directory / OFFICIAL_MARKER).is_file():
        return "official"
    raise AVBenchError(
        f"{directory}: not a Crab checkpoint: expected our layout ({CONFIG_FILE} with format {FORMAT!r} and "
        f"{WEIGHTS_FILE}) or the official release layout ({OFFICIAL_MARKER} and the base models; see docs/crab.md)"
    )


def load_checkpoint(directory: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> LoadedCrab:
    """Load a checkpoint of either layout onto `device` in `dtype`, in eval mode."""
    directory = Path(directory)
    if not directory.is_dir():
        raise AVBenchError(f"checkpoint directory {directory} does not exist")
    if detect_layout(directory) == "official":
        from .official import load_official

        return load_official(directory, device=device, dtype=dtype)
    return _load_ours(directory, device, dtype)


def _load_ours(directory: Path, device: torch.device | str, dtype: torch.dtype) -> LoadedCrab:
    meta = json.loads((directory / CONFIG_FILE).read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise AVBenchError(f"{directory / CONFIG_FILE}: format_version {meta.get('format_version')!r}; this avbench reads {FORMAT_VERSION}")
    config = CrabConfig.from_dict(meta["config"])
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise AVBenchError(f"{weights}: weights file missing")
    tokenizer = load_tokenizer(directory)
    if len(tokenizer) != meta.get("vocab_size"):
        raise AVBenchError(f"{directory}: tokenizer has {len(tokenizer)} tokens, config.json says {meta.get('vocab_size')}")
    model = build_model(config, tokenizer, device, dtype)
    state = load_file(str(weights), device="cpu")
    check_state_dict(model, state, weights)
    model.load_state_dict(state, strict=True)
    return LoadedCrab(model.eval(), tokenizer, config, "avbench", directory, file_digest([weights]))
