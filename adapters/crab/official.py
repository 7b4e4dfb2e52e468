"""The official Crab release layout: reading it onto our modules, and writing it (for tests).

The public release (GeWu-Lab/Crab README; weights on the Hugging Face hub, `ahsgdxhs/Crab`) is not one
checkpoint but base models plus Crab's trained parts. avbench reads them from one directory:

    DIR/Llama-2-7b-chat-hf/          the LLaMA-2-chat HF folder (config.json, tokenizer, *.safetensors or *.bin)
    DIR/clip-vit-large-patch14/      the OpenAI CLIP HF folder (config.json, weights; `vision_model.*` used)
    DIR/BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt   BEATs, `{"cfg": ..., "model": ...}`
    DIR/finetune_weights.bin         Crab's joint instruction tuning: Q-Formers + projections + I-LoRA
    DIR/avs_finetune_weights.bin     segmentation fine-tuning for S4/MS3/Ref-AVS (optional)
    DIR/avss_finetune_weights.bin    segmentation fine-tuning for AVSS (optional)
    DIR/avbench_crab.json            optional: CrabConfig fields that differ from Crab's published ones

What the `.bin` files hold follows from Crab's code: `scripts/pretrain/trainer.py` (`_save_checkpoint`)
saves the `named_parameters` of the peft-wrapped model whose names contain one of `--save_modules`:
`vl_projector,al_projector,lora` for `finetune_weights.bin` (`scripts/finetune/finetune_hyperlora.sh`),
`seg_module,embed_tokens,lm_head` for the segmentation fine-tuning (`finetune_hyper_lora_avs.sh`); the
names therefore carry the peft prefix `base_model.model.`. Consequences, all handled here:
- parameters only: the random Fourier matrices of the decoder's position encodings (buffers) are not in
  the release; Crab drew them from the global RNG at start-up. They are set from a fixed seed here
  (`reset_unsaved_buffers`), so decoded masks cannot match the official run bit for bit.
- `finetune_weights.bin` has no embedding rows for the 17 added tokens: Crab's text-task inference
  used the rows `resize_token_embeddings` drew at random. Here they are drawn from a fixed seed
  (normal, std = initializer_range, as that resize does) for text tasks; segmentation tasks use the
  full `embed_tokens` / `lm_head` of the segmentation file, as Crab does.
- the LAVIS Q-Former saves parts the query-only path never runs (word/position embeddings, the text
  FFN `intermediate`/`output`, the MLM head `cls.*`): they are recognised and dropped.
Every other official key must map onto a model key and every model key must be filled, or loading
fails listing the keys.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from safetensors.torch import load_file, save_file
from transformers import PreTrainedTokenizerBase

from avbench.errors import AVBenchError, DataError, read_json

from .beats import BEATs, load_beats_checkpoint, save_beats_checkpoint
from .config import CrabConfig, full_config
from .ilora import PEFT_PREFIX, ilora_from_official, ilora_to_official
from .model import CrabModel

LLM_DIR = "Llama-2-7b-chat-hf"
CLIP_DIR = "clip-vit-large-patch14"
BEATS_FILE = "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt"
FINETUNE_FILE = "finetune_weights.bin"
SEG_FILES = {"avs": "avs_finetune_weights.bin", "avss": "avss_finetune_weights.bin"}
OVERRIDES_FILE = "avbench_crab.json"
UNSAVED_SEED = 0

_MODEL = PEFT_PREFIX + "model."  # Crab's UnifiedModel (LlamaModel + multimodal modules) inside peft
_RESAMPLERS = {"vl_projector.": ("visual", "visual_resampler.", "visual_projector."),
               "al_projector.": ("audio", "audio_resampler.", "audio_projector.")}
_QFORMER_UNUSED = re.compile(
    r"^(?:bert\.embeddings\.(?:word_embeddings|position_embeddings)\.weight|bert\.embeddings\.position_ids"
    r"|bert\.encoder\.layer\.\d+\.(?:intermediate|output)\.\S+|cls\.\S+)$"
)


# ------------------------------------------------------------------------------------------ key maps


def qformer_key_to_ours(key: str) -> str | None:
    """A LAVIS Q-Former key (below `visual_Qformer.` / `audio_Qformer.`) -> `Blip2QFormerModel` key;
    None for parts the query-only path never uses."""
    if _QFORMER_UNUSED.match(key):
        return None
    if key.startswith("bert.embeddings.LayerNorm."):
        return "layernorm." + key.rsplit(".", 1)[1]
    if key.startswith("bert.encoder.layer."):
        rest = key[len("bert."):]
        return rest.replace(".attention.self.", ".attention.attention.").replace(".crossattention.self.", ".crossattention.attention.")
    raise AVBenchError(f"unknown Q-Former key {key!r}")


def connector_key_to_ours(key: str) -> str | None:
    """A `finetune_weights.bin` key of a connector (prefix already removed: `vl_projector.…` /
    `al_projector.…`) -> our key; None for unused Q-Former parts."""
    for prefix, (kind, resampler, projector) in _RESAMPLERS.items():
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        if rest in (f"{kind}_ln.weight", f"{kind}_ln.bias"):
            return resampler + "ln." + rest.rsplit(".", 1)[1]
        if rest == f"{kind}_query_tokens":
            return resampler + "query_tokens"
        if rest.startswith(f"{kind}_proj."):
            return projector + rest[len(f"{kind}_proj."):]
        if rest.startswith(f"{kind}_Qformer."):
            inner = qformer_key_to_ours(rest[len(f"{kind}_Qformer."):])
            return None if inner is None else resampler + "qformer." + inner
    raise AVBenchError(f"unknown connector key {key!r}")


_SEG_RENAMES = (
    (re.compile(r"^text_hidden_fcs\.0\."), "text_fc."),
    (re.compile(r"^image_feature_neck\."), "neck."),
    (re.compile(r"^mask_decoder\.transformer\.(\d+)\.layers\.(\d+)\.norm(\d)\."), r"decoder.transformer.\1.layers.\2.layer_norm\3."),
    (re.compile(r"^mask_decoder\.transformer\.(\d+)\.norm_final_attn\."), r"decoder.transformer.\1.layer_norm_final_attn."),
    (re.compile(r"^mask_decoder\.ms3_s4_classfier\."), "decoder.binary_classifier."),
    (re.compile(r"^mask_decoder\.avss_classifier\."), "decoder.semantic_classifier."),
    (re.compile(r"^mask_decoder\."), "decoder."),
)


def seg_key_to_ours(key: str) -> str:
    """A `seg_module.…` key (prefix removed) -> our `seg.…` key."""
    for pattern, replacement in _SEG_RENAMES:
        new, count = pattern.subn(replacement, key)
        if count:
            return "seg." + new
    return "seg." + key


def seg_key_to_official(key: str) -> str:
    """Inverse of `seg_key_to_ours` (our key without `seg.`)."""
    inverse = (
        (r"^text_fc\.", "text_hidden_fcs.0."), (r"^neck\.", "image_feature_neck."),
        (r"^decoder\.transformer\.(\d+)\.layers\.(\d+)\.layer_norm(\d)\.", r"mask_decoder.transformer.\1.layers.\2.norm\3."),
        (r"^decoder\.transformer\.(\d+)\.layer_norm_final_attn\.", r"mask_decoder.transformer.\1.norm_final_attn."),
        (r"^decoder\.binary_classifier\.", "mask_decoder.ms3_s4_classfier."),
        (r"^decoder\.semantic_classifier\.", "mask_decoder.avss_classifier."),
        (r"^decoder\.", "mask_decoder."),
    )
    for pattern, replacement in inverse:
        new, count = re.subn(pattern, replacement, key)
        if count:
            return new
    return key


def _llm_prefix(model: CrabModel) -> str:
    """Our key prefix of the LlamaForCausalLM's own keys."""
    return "llm." + (PEFT_PREFIX if hasattr(model.llm, "get_base_model") else "")


def _llm_base_key(our_rest: str) -> str:
    """Our LLM key (below the LlamaForCausalLM) -> the HF LLaMA key (peft's `.base_layer` removed)."""
    return our_rest.replace(".base_layer.", ".")


def unsaved_keys(model: CrabModel) -> list[str]:
    """Model keys the release never contains (buffers Crab does not save)."""
    return [k for k in model.state_dict() if k.endswith("positional_encoding_gaussian_matrix")]


def reset_unsaved_buffers(model: CrabModel, seed: int = UNSAVED_SEED) -> None:
    """Give the decoder's random Fourier matrices fixed, seeded values (see module docstring)."""
    generator = torch.Generator().manual_seed(seed)
    buffers = dict(model.named_buffers())
    with torch.no_grad():
        for key in unsaved_keys(model):
            buffer = buffers[key]
            buffer.copy_(torch.randn(buffer.shape, generator=generator).to(buffer))


def apply_release_defaults(model: CrabModel, base_vocab: int) -> None:
    """Give `model` the values the release cannot carry (seeded buffers and added-token rows), so that
    a model written with `write_official_layout` loads back identical (used by tests)."""
    reset_unsaved_buffers(model)
    embed_rows, head_rows = seeded_added_rows(model, model.causal_lm.get_input_embeddings().weight.shape[0] - base_vocab)
    with torch.no_grad():
        model.causal_lm.get_input_embeddings().weight[base_vocab:] = embed_rows.to(model.dtype)
        model.causal_lm.lm_head.weight[base_vocab:] = head_rows.to(model.dtype)


def seeded_added_rows(model: CrabModel, n_rows: int, seed: int = UNSAVED_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """Embedding and LM-head rows for the added tokens: normal(0, initializer_range), fixed seed."""
    generator = torch.Generator().manual_seed(seed)
    std = model.causal_lm.config.initializer_range
    hidden = model.config.llm_hidden
    return (torch.randn((n_rows, hidden), generator=generator) * std, torch.randn((n_rows, hidden), generator=generator) * std)


# ------------------------------------------------------------------------------------------- reading


def _torch_load(path: Path) -> dict[str, torch.Tensor]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise AVBenchError(f"{path}: cannot read ({exc})") from None
    if not isinstance(data, Mapping):
        raise AVBenchError(f"{path}: expected a dict of tensors, got {type(data).__name__}")
    return dict(data)


def read_hf_weights(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of a Hugging Face model folder (*.safetensors preferred, else *.bin shards)."""
    files = sorted(directory.glob("*.safetensors"))
    if files:
        state: dict[str, torch.Tensor] = {}
        for file in files:
            state.update(load_file(str(file)))
        return state
    files = sorted(p for p in directory.glob("*.bin") if p.name != "training_args.bin")
    if not files:
        raise AVBenchError(f"{directory}: no *.safetensors or *.bin weights")
    state = {}
    for file in files:
        state.update(_torch_load(file))
    return state


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError("missing (see docs/crab.md for the official layout)", path)
    return read_json(path)


def official_config(directory: Path) -> CrabConfig:
    """Crab's published settings, with the base models' own configs and optional overrides."""
    config = full_config()
    llm = _read_json(directory / LLM_DIR / "config.json")
    for key in list(config.llm):
        if key in llm:
            config.llm[key] = llm[key]
    clip = _read_json(directory / CLIP_DIR / "config.json")
    vision = clip.get("vision_config", clip)
    for key in list(config.vision):
        if key in vision:
            config.vision[key] = vision[key]
    overrides_path = directory / OVERRIDES_FILE
    if overrides_path.is_file():
        merged = config.to_dict()
        for key, value in _read_json(overrides_path).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        config = CrabConfig.from_dict(merged)
    config.validate()
    return config


def _strip(state: Mapping[str, torch.Tensor], prefix: str, where: Path) -> dict[str, torch.Tensor]:
    outside = sorted(k for k in state if not k.startswith(prefix))
    if outside:
        raise AVBenchError(f"{where}: {len(outside)} unexpected keys without the prefix {prefix!r}: {', '.join(outside)}")
    return {k[len(prefix):]: v for k, v in state.items()}


def _map_into(target: dict[str, torch.Tensor], source: Mapping[str, torch.Tensor], mapper: Callable[[str], str | None],
              valid: set[str], where: Path) -> None:
    """Map `source` keys with `mapper` (None = dropped on purpose); unknown results are errors."""
    unexpected = []
    for key, value in source.items():
        try:
            ours = mapper(key)
        except AVBenchError:
            unexpected.append(key)
            continue
        if ours is None:
            continue
        if ours not in valid:
            unexpected.append(key)
            continue
        target[ours] = value
    if unexpected:
        raise AVBenchError(f"{where}: {len(unexpected)} unexpected keys: {', '.join(sorted(unexpected))}")


@dataclass
class OfficialRelease:
    """What is needed to switch the segmentation weights per task after loading."""

    directory: Path
    base_rows: dict[str, torch.Tensor]  # embed_tokens / lm_head with seeded added rows (text tasks)
    current: str = "text"

    def variant_for(self, task_name: str) -> str:
        wanted = "avss" if task_name == "avss" else ("avs" if task_name in ("s4", "ms3", "ref_avs") else "text")
        if wanted == "avss" and not (self.directory / SEG_FILES["avss"]).is_file():
            wanted = "avs"  # one segmentation file only: it serves AVSS too
        if wanted == "avs" and not (self.directory / SEG_FILES["avs"]).is_file():
            wanted = "avss" if (self.directory / SEG_FILES["avss"]).is_file() else "text"
        return wanted

    def select_task(self, model: CrabModel, task_name: str) -> None:
        """Load the segmentation weights (and their embeddings) `task_name` uses in Crab, if not loaded."""
        wanted = self.variant_for(task_name)
        if wanted == self.current:
            return
        prefix = _llm_prefix(model)
        state = model.state_dict()
        if wanted == "text":
            update = {prefix + k: v for k, v in self.base_rows.items()}
        else:
            update = seg_state(model, self.directory / SEG_FILES[wanted])
        with torch.no_grad():
            for key, value in update.items():
                state[key].copy_(value.to(state[key]))
        self.current = wanted


def seg_state(model: CrabModel, path: Path) -> dict[str, torch.Tensor]:
    """Our keys from a segmentation file: the whole `seg.*` module, `embed_tokens` and `lm_head`."""
    valid = set(model.state_dict())
    prefix = _llm_prefix(model)
    raw = _strip(_torch_load(path), PEFT_PREFIX, path)

    def mapper(key: str) -> str | None:
        if key.startswith("model.seg_module."):
            return seg_key_to_ours(key[len("model.seg_module."):])
        if key in ("model.embed_tokens.weight", "lm_head.weight"):
            return prefix + key
        raise AVBenchError(key)

    out: dict[str, torch.Tensor] = {}
    _map_into(out, raw, mapper, valid, path)
    expected = {k for k in valid if k.startswith("seg.")} - set(unsaved_keys(model))
    missing = sorted(expected - set(out))
    if missing:
        raise AVBenchError(f"{path}: {len(missing)} missing keys: {', '.join(missing)}")
    return out


def load_official(directory: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    """Read the official layout (module docstring) into a `CrabModel`; returns a `LoadedCrab`."""
    from .checkpoint import LoadedCrab, build_model, check_state_dict, file_digest
    from .tokenizer import load_tokenizer

    directory = Path(directory)
    for name in (LLM_DIR, CLIP_DIR):
        if not (directory / name).is_dir():
            raise AVBenchError(f"{directory / name}: missing folder of the official layout (see docs/crab.md)")
    for name in (BEATS_FILE, FINETUNE_FILE):
        if not (directory / name).is_file():
            raise AVBenchError(f"{directory / name}: missing file of the official layout (see docs/crab.md)")
    config = official_config(directory)
    beats = load_beats_checkpoint(directory / BEATS_FILE)
    config.audio = beats.cfg.to_dict()
    tokenizer = load_tokenizer(directory / LLM_DIR)
    base_vocab = int(config.llm["vocab_size"])
    if len(tokenizer) != base_vocab + 17:
        raise AVBenchError(f"{directory / LLM_DIR}: tokenizer has {len(tokenizer) - 17} base tokens, config.json vocab_size {base_vocab}")
    model = build_model(config, tokenizer, device, dtype)
    valid = set(model.state_dict())
    state: dict[str, torch.Tensor] = {}
    prefix = _llm_prefix(model)

    # LLaMA base: HF names -> ours; the added rows of embed_tokens / lm_head come from a fixed seed
    llm_keys = {_llm_base_key(k[len(prefix):]): k for k in valid if k.startswith(prefix) and ".lora_" not in k}
    llm_path = directory / LLM_DIR
    base = read_hf_weights(llm_path)
    embed_rows, head_rows = seeded_added_rows(model, len(tokenizer) - base_vocab)
    for name, rows in (("model.embed_tokens.weight", embed_rows), ("lm_head.weight", head_rows)):
        if name in base:
            base[name] = torch.cat([base[name].float(), rows], dim=0)
    # older HF conversions also saved RoPE's inverse frequencies, a buffer the model recomputes
    base = {k: v for k, v in base.items() if not k.endswith("rotary_emb.inv_freq")}
    _map_into(state, base, lambda k: llm_keys.get(k) or k, valid, llm_path)
    base_rows = {name: state[prefix + name].clone() for name in ("model.embed_tokens.weight", "lm_head.weight") if prefix + name in state}

    # CLIP: `vision_model.*` of the CLIP folder; the text tower and projections are not used
    clip_path = directory / CLIP_DIR
    # (the OpenAI CLIP files also hold the `position_ids` buffer older transformers saved)
    clip = {k: v for k, v in read_hf_weights(clip_path).items()
            if not k.startswith(("text_model.", "text_projection", "visual_projection", "logit_scale"))
            and not k.endswith("embeddings.position_ids")}
    _map_into(state, clip, lambda k: "vision.tower." + k.removeprefix("vision_model."), valid, clip_path)

    # BEATs, as loaded strictly by its own reader
    state.update({"audio_encoder." + k: v for k, v in beats.state_dict().items()})

    # Crab's connectors and I-LoRA
    finetune_path = directory / FINETUNE_FILE
    finetune = _torch_load(finetune_path)
    lora = ilora_from_official({k: v for k, v in finetune.items() if ".lora_" in k})
    lora_state = {"llm." + k.rsplit(".", 1)[0] + ".default.weight": v for k, v in lora.items()}
    unknown_lora = sorted(k for k in lora_state if k not in valid)
    if unknown_lora:
        raise AVBenchError(f"{finetune_path}: {len(unknown_lora)} unexpected I-LoRA keys: {', '.join(unknown_lora)}")
    state.update(lora_state)
    connectors = _strip({k: v for k, v in finetune.items() if ".lora_" not in k}, _MODEL, finetune_path)
    _map_into(state, connectors, connector_key_to_ours, valid, finetune_path)

    # the decoder: from the segmentation file used first (re-selected per task by the adapter)
    release = OfficialRelease(directory, base_rows)
    seg_file = next((directory / f for f in SEG_FILES.values() if (directory / f).is_file()), None)
    if seg_file is not None:
        state.update({k: v for k, v in seg_state(model, seg_file).items() if k.startswith("seg.")})
    reset_unsaved_buffers(model)
    own = model.state_dict()
    for key in unsaved_keys(model):
        state[key] = own[key]
    if seg_file is None:  # text-only release: the decoder stays as initialised, but say so
        for key in valid:
            if key.startswith("seg.") and key not in state:
                state[key] = own[key]
    check_state_dict(model, state, directory)
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)
    hashed = [directory / FINETUNE_FILE] + [directory / f for f in SEG_FILES.values() if (directory / f).is_file()]
    return LoadedCrab(model.eval(), tokenizer, config, "official", directory, file_digest(hashed),
                      extra={"official": release, "segmentation_weights": seg_file is not None})


# ------------------------------------------------------------------------------------------- writing


def write_official_layout(model: CrabModel, base_tokenizer: PreTrainedTokenizerBase, directory: str | Path,
                          overrides: Mapping[str, Any] | None = None) -> Path:
    """Write `model` as the official release would hold it (for tests and conversions).

    `base_tokenizer` is the tokenizer *without* Crab's added tokens (as LLaMA-2 ships it). The
    Q-Former parts Crab saves but never runs are written too (zeros), as the release has them.
    """
    from transformers import LlamaConfig

    directory = Path(directory)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    prefix = _llm_prefix(model)
    base_vocab = len(base_tokenizer)
    config = model.config

    llm_dir = directory / LLM_DIR
    llm_dir.mkdir(parents=True, exist_ok=True)
    llm_config = LlamaConfig(**{**config.llm, "vocab_size": base_vocab})
    llm_config.save_pretrained(str(llm_dir))
    base = {}
    for key, value in state.items():
        if key.startswith(prefix) and ".lora_" not in key:
            name = _llm_base_key(key[len(prefix):])
            base[name] = value[:base_vocab].clone() if name in ("model.embed_tokens.weight", "lm_head.weight") else value.clone()
    save_file(base, str(llm_dir / "model.safetensors"))
    base_tokenizer.save_pretrained(str(llm_dir))

    clip_dir = directory / CLIP_DIR
    clip_dir.mkdir(parents=True, exist_ok=True)
    (clip_dir / "config.json").write_text(json.dumps({"model_type": "clip", "vision_config": config.vision}, indent=2))
    clip = {"vision_model." + k[len("vision.tower."):]: v.clone() for k, v in state.items() if k.startswith("vision.tower.")}
    # parts of the OpenAI CLIP files the loader must recognise and skip
    clip["logit_scale"] = torch.tensor(2.6592)
    clip["text_model.embeddings.token_embedding.weight"] = torch.zeros(4, 8)
    n_positions = (int(config.vision["image_size"]) // int(config.vision["patch_size"])) ** 2 + 1
    clip["vision_model.embeddings.position_ids"] = torch.arange(n_positions).unsqueeze(0)
    save_file(clip, str(clip_dir / "model.safetensors"))

    beats = BEATs(model.audio_encoder.cfg)
    beats.load_state_dict(model.audio_encoder.state_dict())
    save_beats_checkpoint(beats, directory / BEATS_FILE)

    finetune: dict[str, torch.Tensor] = {}
    for official_prefix, (kind, resampler, projector) in _RESAMPLERS.items():
        head = _MODEL + official_prefix
        for key, value in state.items():
            if key.startswith(resampler + "qformer."):
                inner = key[len(resampler + "qformer."):]
                if inner.startswith("layernorm."):
                    name = "bert.embeddings.LayerNorm." + inner.split(".", 1)[1]
                else:
                    name = "bert." + inner.replace(".attention.attention.", ".attention.self.").replace(".crossattention.attention.", ".crossattention.self.")
                finetune[f"{head}{kind}_Qformer.{name}"] = value.clone()
            elif key.startswith(resampler + "ln."):
                finetune[f"{head}{kind}_ln.{key.rsplit('.', 1)[1]}"] = value.clone()
            elif key == resampler + "query_tokens":
                finetune[f"{head}{kind}_query_tokens"] = value.clone()
            elif key.startswith(projector):
                finetune[f"{head}{kind}_proj.{key[len(projector):]}"] = value.clone()
        width = config.qformer.hidden_size
        finetune[f"{head}{kind}_Qformer.bert.embeddings.word_embeddings.weight"] = torch.zeros(8, width)
        finetune[f"{head}{kind}_Qformer.bert.embeddings.position_embeddings.weight"] = torch.zeros(8, width)
        finetune[f"{head}{kind}_Qformer.cls.predictions.bias"] = torch.zeros(8)
        for layer in range(config.qformer.num_hidden_layers):
            finetune[f"{head}{kind}_Qformer.bert.encoder.layer.{layer}.output.dense.weight"] = torch.zeros(width, config.qformer.intermediate_size)
    lora = {k[len("llm."):].replace(".default.weight", ".weight"): v.clone() for k, v in state.items() if ".lora_" in k}
    finetune.update(ilora_to_official(lora))
    torch.save(finetune, directory / FINETUNE_FILE)

    seg = {PEFT_PREFIX + "model.seg_module." + seg_key_to_official(k[len("seg."):]): v.clone()
           for k, v in state.items() if k.startswith("seg.") and k not in unsaved_keys(model)}
    seg[PEFT_PREFIX + "model.embed_tokens.weight"] = state[prefix + "model.embed_tokens.weight"].clone()
    seg[PEFT_PREFIX + "lm_head.weight"] = state[prefix + "lm_head.weight"].clone()
    for file in SEG_FILES.values():
        torch.save(seg, directory / file)
    if overrides:
        (directory / OVERRIDES_FILE).write_text(json.dumps(dict(overrides), indent=2))
    return directory
