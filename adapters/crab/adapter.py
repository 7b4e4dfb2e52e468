"""`--model crab`: the Crab-style model as an avbench adapter.

Options (CLI `avbench run --model crab ...`): `checkpoint` (a directory in our layout or the official
release layout; default: the bundled `crab-tiny`, see `default_checkpoint`), `device` (cpu, cuda, cuda:N, auto), `dtype` (auto, float32,
bfloat16, float16; auto = bfloat16 on a CUDA device that supports it, else float32),
`max_new_tokens` (default: the task's, i.e. Crab's 500 for text tasks and 100 for segmentation; for
segmentation that is Crab's budget per mask, so the default is 100 x the most frames of a sample in
the batch, since avbench asks for all of a sample's masks in one answer).

Per batch: the task's prompt is wrapped in Crab's chat framing, media are encoded (the batch's
frames in one CLIP call, its audio segments in one BEATs call) and spliced in,
all samples are decoded greedily together (left padding), and for segmentation tasks every group
of mask tokens in the answer becomes one frame's map: probabilities (sigmoid) for S4/MS3/Ref-AVS,
class ids (argmax over 71 classes, as Crab's AVSS inference) for AVSS. A checkpoint whose config sets
`seg.masks_follow_answer` (avbench's, off for Crab's) bounds the maps by the answer's words
(`answer_masks`): an answer saying its referent is absent gets empty maps, an AVSS answer's named
classes label the binary mask.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from avbench.adapter import ModelAdapter
from avbench.distributed import topology
from avbench.errors import AVBenchError, ModelUnavailableError
from avbench.media import DecodedMedia, MediaSpec
from avbench.task import Task
from avbench.types import ModelOutput, Sample
from avbench.vocab import AVSS_CLASSES

from .answer_masks import label_foreground, named_classes, says_absent
from .checkpoint import LoadedCrab, load_checkpoint
from .model import SampleInputs
from .preprocess import prepare_media
from .prompts import chat_prompt, encode

DEVICES = "cpu, cuda, cuda:N or auto"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
SEMANTIC_TASKS = frozenset({"avss"})


def resolve_device(name: str | None) -> torch.device:
    """The device of `--device`; in a data-parallel run `auto` and `cuda` mean each rank's own GPU, cuda:LOCAL_RANK."""
    name = (name or "auto").strip()
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        name = "cuda"
    place = topology()
    if name == "cuda" and place.is_distributed and torch.cuda.is_available():
        if place.local_rank >= torch.cuda.device_count():
            raise AVBenchError(f"this rank (LOCAL_RANK {place.local_rank}) would run on cuda:{place.local_rank}, but only "
                               f"{torch.cuda.device_count()} CUDA device(s) are visible: start at most that many processes per "
                               "node, or pass --device cuda:N to put every rank on GPU N")
        return torch.device("cuda", place.local_rank)
    try:
        device = torch.device(name)
    except RuntimeError:
        raise AVBenchError(f"unknown device {name!r}; use {DEVICES}") from None
    if device.type not in ("cpu", "cuda"):
        raise AVBenchError(f"unsupported device {name!r}; use {DEVICES}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise AVBenchError(f"device {name!r} requested but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise AVBenchError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return device


def resolve_dtype(name: str | None, device: torch.device) -> torch.dtype:
    name = (name or "auto").strip()
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if name not in DTYPES:
        raise AVBenchError(f"unknown dtype {name!r}; use auto, {', '.join(DTYPES)}")
    if device.type == "cpu" and DTYPES[name] is torch.float16:
        raise AVBenchError("float16 is not supported on CPU; use float32 or bfloat16")
    return DTYPES[name]


def _budget(max_new_tokens: int | None) -> int | None:
    if max_new_tokens is not None and int(max_new_tokens) < 1:
        raise AVBenchError(f"--max-new-tokens must be >= 1, got {max_new_tokens}")
    return int(max_new_tokens) if max_new_tokens is not None else None


#: crab-tiny as trained by configs/crab-tiny-seconds.yaml, -polish.yaml and crab-tiny.yaml, shipped with the package.
BUNDLED_CHECKPOINT = Path(__file__).parent / "crab_tiny"


def default_checkpoint() -> Path:
    """The bundled crab-tiny checkpoint (docs/training.md says how it was made)."""
    if not (BUNDLED_CHECKPOINT / "model.safetensors").is_file():
        raise ModelUnavailableError(
            f"the bundled crab-tiny checkpoint is missing from {BUNDLED_CHECKPOINT}: reinstall avbench, or train it with "
            "`avbench train --config` configs/crab-tiny-seconds.yaml, then configs/crab-tiny-polish.yaml, then "
            "`avbench train --config configs/crab-tiny.yaml`, and pass --checkpoint runs/crab-tiny/final"
        )
    return BUNDLED_CHECKPOINT


class CrabAdapter(ModelAdapter):
    name = "crab"
    description = ("Crab-style audio-visual LLM (LLaMA + CLIP + BEATs + Q-Formers + I-LoRA + SAM-style decoder); "
                   "default weights: the bundled crab-tiny, or --checkpoint DIR")
    # Crab's loader takes the first frame of each tenth of a video (GeWu-Lab/Crab `dataset/unified_dataset.py`)
    media_spec = MediaSpec(n_frames=10, frame_size=224, sample_rate=16000, audio_seconds=None, frame_anchor="start")

    def __init__(self, seed: int = 0, checkpoint: str | Path | None = None, device: str | None = None,
                 dtype: str | None = None, max_new_tokens: int | None = None, **options: Any):
        super().__init__(seed, checkpoint=checkpoint, device=device, dtype=dtype, max_new_tokens=max_new_tokens, **options)
        if options:
            raise AVBenchError(f"model 'crab' does not take the options {sorted(options)}")
        if checkpoint is None:
            checkpoint = default_checkpoint()
        self.max_new_tokens = _budget(max_new_tokens)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        torch.manual_seed(seed)
        self.loaded: LoadedCrab = load_checkpoint(checkpoint, device=self.device, dtype=self.dtype)

    @classmethod
    def from_loaded(cls, loaded: LoadedCrab, max_new_tokens: int | None = None, seed: int = 0) -> "CrabAdapter":
        """The adapter around a model already in memory, on its device and in its dtype (e.g. a full-size
        model with random weights in `tools/gpu_check.py`, which has no checkpoint to load)."""
        adapter = cls.__new__(cls)
        ModelAdapter.__init__(adapter, seed, checkpoint=str(loaded.path), device=str(loaded.model.device),
                              dtype=str(loaded.model.dtype).replace("torch.", ""), max_new_tokens=max_new_tokens)
        adapter.max_new_tokens = _budget(max_new_tokens)
        adapter.device, adapter.dtype, adapter.loaded = loaded.model.device, loaded.model.dtype, loaded
        return adapter

    def prepare(self, task: Task, data_root: Path, split: str) -> None:
        select = getattr(self.loaded.extra.get("official"), "select_task", None)
        if select is not None:  # official release: AVSS and the binary tasks have their own decoder weights
            select(self.loaded.model, task.name)

    # ---- prediction ----------------------------------------------------------------------------------
    def predict(self, task: Task, samples: Sequence[Sample], prompts: Sequence[str],
                media: Sequence[DecodedMedia] | None = None) -> list[ModelOutput]:
        if media is None or len(media) != len(samples):
            raise AVBenchError("model 'crab' reads media: the runner must pass one DecodedMedia per sample "
                               f"(got {None if media is None else len(media)} for {len(samples)} samples)")
        model, tokenizer = self.loaded.model, self.loaded.tokenizer
        config = self.loaded.config
        with torch.inference_mode():
            inputs, frame_counts = [], []
            for sample, prompt, decoded in zip(samples, prompts, media):
                sample_media = prepare_media(task.name, sample, decoded, config.image_size)
                ids = encode(tokenizer, chat_prompt(prompt, config.system_prompt, tokenizer.bos_token or "<s>"))
                inputs.append(SampleInputs(ids, sample_media.pixels.to(self.dtype), sample_media.segments, sample_media.is_image))
                frame_counts.append(sample_media.pixels.shape[0])
            prepared = model.prepare_batch(inputs)  # the batch's frames and audio each encoded in one call
            budget = self.max_new_tokens or task.max_new_tokens
            if self.max_new_tokens is None and task.output_kind == "mask":
                # Crab's 100 new tokens are per segmentation answer, which holds one mask; avbench's
                # prompts ask for every frame's mask in one answer (8 mask tokens per frame alone)
                budget *= max(frame_counts)
            generation = model.generate(prepared, budget)
            outputs = []
            for index, (tokens, states) in enumerate(zip(generation.tokens, generation.states)):
                text = tokenizer.decode(tokens, skip_special_tokens=False)
                masks = None
                if task.output_kind == "mask":
                    masks = self._masks(task, tokens, states, generation.prompt_states[index], prepared[index], frame_counts[index])
                outputs.append(ModelOutput(text=text, masks=masks))
        return outputs

    def _masks(self, task: Task, tokens: list[int], states: torch.Tensor, prompt_state: torch.Tensor | None,
               prepared: Any, n_frames: int) -> list[np.ndarray] | None:
        """One map per mask-token group, group k for frame k (groups beyond the frames are dropped);
        None when the answer holds no complete group (the task then records a parse failure). The
        decoder reads the states Crab's inference reads (`CrabModel.mask_groups`)."""
        model = self.loaded.model
        follow = model.config.seg.masks_follow_answer
        size = model.config.image_size
        words = self._words_before_masks(tokens) if follow else ""
        if follow and says_absent(words, task.absent_phrase):
            return [np.zeros((size, size), dtype=np.float32) for _ in range(n_frames)]
        grouped = model.mask_groups(tokens, states, prompt_state)
        per = model.config.seg.mask_tokens_per_mask
        groups = min(grouped.shape[0] // per, n_frames)
        if groups == 0:
            return None
        semantic = task.name in SEMANTIC_TASKS
        mask_states, frames = grouped[: groups * per], list(range(groups))
        logits = model.decode_masks(mask_states, prepared.frame_features, frames, semantic).float()
        if semantic:
            named = named_classes(words, AVSS_CLASSES) if follow else []
            if named:
                binary = model.decode_masks(mask_states, prepared.frame_features, frames, False).float()[:, 0]
                return list(label_foreground(binary, logits, named).cpu().numpy())
            return [m for m in logits.argmax(dim=1).to(torch.int64).cpu().numpy()]
        return [m for m in torch.sigmoid(logits[:, 0]).cpu().numpy().astype(np.float32)]

    def _words_before_masks(self, tokens: list[int]) -> str:
        mask_ids = set(self.loaded.model.token_ids.mask_ids)
        end = next((j for j, t in enumerate(tokens) if t in mask_ids), len(tokens))
        return self.loaded.tokenizer.decode(tokens[:end], skip_special_tokens=True)

    def fingerprint(self) -> dict[str, Any]:
        return {"checkpoint_hash": self.loaded.checkpoint_hash, "config_hash": self._config_hash()}

    def _config_hash(self) -> str:
        text = json.dumps(self.loaded.config.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        loaded = self.loaded
        return {
            "name": self.name,
            "config": loaded.config.name,
            "parameters": sum(p.numel() for p in loaded.model.parameters()),
            "checkpoint": str(loaded.path),
            "checkpoint_layout": loaded.layout,
            "checkpoint_hash": loaded.checkpoint_hash,
            # the hash covers the weights only; the config (e.g. how masks are decoded) changes scores too
            "config_hash": self._config_hash(),
            "masks_follow_answer": loaded.config.seg.masks_follow_answer,
            "dtype": str(self.dtype).replace("torch.", ""),
            "device": str(self.device),
            "max_new_tokens": self.max_new_tokens,
        }
