"""Configuration of the Crab-style model: one JSON-serialisable dataclass, presets `full` and `tiny`.

Facts of the public Crab code (GeWu-Lab/Crab, `models/unified_arch.py`, `models/multimodal_encoder.py`,
`scripts/finetune/inference_hyper_lora.sh`) that the `full` preset reproduces:

- LLM: LLaMA-2-7B-chat (`LlamaForCausalLM`, vocabulary 32000 + 17 added tokens).
- Vision: CLIP ViT-L/14 at 224 px; `hidden_states[14]`, `[22]`, `[23]` (patch tokens, CLS dropped).
  The LLM reads the Q-Former output of the last listed layer; the mask decoder reads the first two.
- Q-Formers: BERT-base width (768, 12 heads, FFN 3072), 2 layers with cross-attention in every layer,
  32 queries per frame (visual) and per audio segment (audio); a LayerNorm on the encoder features
  first; a 2-layer MLP (Linear, GELU, Linear) into the LLM width.
- Audio: BEATs iter3+ (768 wide) on one-second segments.
- Segmentation: 2 image scales x 3 mask tokens, prompt dim 256, two-way transformer depth 2
  (8 heads, MLP 2048), 300 AVS queries, query generator of 2 layers (8 heads, FFN 2048),
  low-resolution masks at 112 px, upsampled to 224; 71 AVSS classes.
- I-LoRA: r 8, alpha 16, dropout 0.05, 3 heads on q/k/v/o/gate/up/down projections.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from avbench.errors import AVBenchError

PRESETS = ("full", "tiny")


@dataclass
class QFormerSettings:
    """Width of the Q-Formers (BERT-base in Crab) and query counts."""

    hidden_size: int = 768
    num_hidden_layers: int = 2
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    layer_norm_eps: float = 1e-12
    visual_queries: int = 32
    audio_queries: int = 32
    #: Linear layers of the MLP into the LLM width (Crab: 2, i.e. Linear-GELU-Linear).
    projector_depth: int = 2
    #: Std of the random initialisation (BERT's 0.02, calibrated for width 768; a narrow Q-Former needs
    #: about 1/sqrt(width), or its output barely depends on the features it reads).
    initializer_range: float = 0.02


@dataclass
class SegSettings:
    """The SAM-style mask decoder (Crab's `SegModule` + `MaskDecoderMultiScale`)."""

    prompt_embed_dim: int = 256
    decoder_depth: int = 2
    decoder_heads: int = 8
    decoder_mlp_dim: int = 2048
    attention_downsample_rate: int = 2
    avs_query_num: int = 300
    query_generator_layers: int = 2
    query_generator_heads: int = 8
    query_generator_hidden: int = 2048
    image_scale_nums: int = 2
    token_nums_per_scale: int = 3
    low_res_mask_size: int = 112
    num_semantic_classes: int = 71
    #: At inference, mask token j of the answer prompts the decoder with the last-layer state this many
    #: positions before it: 2 = the state that predicted the token before the mask token, what Crab's
    #: inference (`UnifiedForCausalLM.generate_avs`) feeds its decoder; 1 = the state that predicted the
    #: mask token itself, the position Crab's training uses (`prepare_multimodal_inputs`, "note: -1").
    #: Training (`CrabModel.forward`) always uses 1, as Crab's. See docs/crab.md.
    inference_state_offset: int = 2
    #: avbench's addition, off in every preset (so official checkpoints and crab-tiny load as trained): each
    #: scale's prompt also modulates the image embedding (FiLM) and biases the binary logit, and AVSS maps
    #: become the binary mask labelled with the prompt's likeliest class (`mask_decoder.PromptConditioning`).
    #: Crab passes the prompt only through the query generator, where one key adds the same vector to every
    #: query; a small decoder trained for minutes learns to ignore it (docs/training.md measures both).
    #: A training recipe turns it on with `seg: {prompt_conditioning: true}`.
    prompt_conditioning: bool = False
    #: avbench's addition to inference, off in every preset (Crab's masks come from the decoder alone): the
    #: answer's words bound what its masks may hold. An answer that says its referent is not in the video
    #: (the task's `absent_phrase`) gets empty masks, as a rejection token empties the masks of GSVA-style
    #: referring segmenters; an AVSS map labels the binary mask's foreground with the classes the answer
    #: names (the one the 71-way classifier scores highest where several are named), as LISA-style
    #: segmenters tie each mask to the class they name; an answer naming no AVSS class keeps the 71-way
    #: arg-max. Weights are unchanged: it is a decoding choice, so a recipe can set it for the checkpoint it
    #: writes (`seg: {masks_follow_answer: true}`) and a copy of a checkpoint can flip it in config.json.
    masks_follow_answer: bool = False

    @property
    def mask_tokens_per_mask(self) -> int:
        return self.image_scale_nums * self.token_nums_per_scale


@dataclass
class ILoRASettings:
    enabled: bool = True
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    n_heads: int = 3
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class CrabConfig:
    """Everything needed to build the model (weights come from a checkpoint)."""

    name: str = "crab-7b"
    #: `LlamaConfig` keyword arguments; `vocab_size` is the base vocabulary (added tokens come on top).
    llm: dict[str, Any] = field(default_factory=dict)
    #: `CLIPVisionConfig` keyword arguments.
    vision: dict[str, Any] = field(default_factory=dict)
    #: Indices into CLIP's `hidden_states` (0 = embeddings); the last feeds the LLM, the first
    #: `seg.image_scale_nums` feed the mask decoder.
    vision_layers: tuple[int, ...] = (14, 22, 23)
    #: BEATs configuration (the `cfg` dict of a BEATs checkpoint).
    audio: dict[str, Any] = field(default_factory=dict)
    qformer: QFormerSettings = field(default_factory=QFormerSettings)
    seg: SegSettings = field(default_factory=SegSettings)
    ilora: ILoRASettings = field(default_factory=ILoRASettings)
    #: "llama2": the LLaMA-2 tokenizer of the checkpoint; "tiny": our small offline-built tokenizer.
    tokenizer: str = "llama2"
    system_prompt: str = "You are a helpful assistant."
    #: Frames per video and frame side the model is fed (Crab: 10 frames at 224 px).
    n_frames: int = 10
    image_size: int = 224
    #: A learned embedding per frame / audio-segment index, added to that frame's (segment's) media
    #: tokens, for this many indices; 0 = none, as Crab (its LLM tells frames apart by RoPE positions
    #: alone). Still images (ARIG, per-second captions) get none. See `tiny_config`.
    time_embeddings: int = 0

    # ---- derived ----------------------------------------------------------------------------------
    @property
    def patch_grid(self) -> int:
        """Side of CLIP's patch grid (224 / 14 = 16)."""
        return int(self.vision.get("image_size", 224)) // int(self.vision.get("patch_size", 14))

    @property
    def llm_hidden(self) -> int:
        return int(self.llm["hidden_size"])

    @property
    def vision_hidden(self) -> int:
        return int(self.vision["hidden_size"])

    @property
    def audio_hidden(self) -> int:
        return int(self.audio.get("encoder_embed_dim", 768))

    # ---- (de)serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["vision_layers"] = list(self.vision_layers)
        data["ilora"]["target_modules"] = list(self.ilora.target_modules)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CrabConfig":
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AVBenchError(f"unknown Crab config fields {unknown}; known: {sorted(known)}")
        try:
            sub = {
                "qformer": QFormerSettings(**data.pop("qformer", {})),
                "seg": SegSettings(**data.pop("seg", {})),
                "ilora": ILoRASettings(**{**data.pop("ilora", {})}),
            }
        except TypeError as exc:
            raise AVBenchError(f"bad Crab config: {exc}") from None
        sub["ilora"].target_modules = tuple(sub["ilora"].target_modules)
        if "vision_layers" in data:
            data["vision_layers"] = tuple(int(v) for v in data["vision_layers"])
        config = cls(**data, **sub)
        config.validate()
        return config

    def validate(self) -> None:
        layers = int(self.vision.get("num_hidden_layers", 0))
        if not self.vision_layers or max(self.vision_layers) > layers or min(self.vision_layers) < 1:
            raise AVBenchError(f"vision_layers {list(self.vision_layers)} must lie in 1..{layers} (CLIP layers)")
        if len(self.vision_layers) < self.seg.image_scale_nums:
            raise AVBenchError(f"the mask decoder needs {self.seg.image_scale_nums} vision layers, got {list(self.vision_layers)}")
        if self.seg.inference_state_offset not in (1, 2):
            raise AVBenchError(f"seg.inference_state_offset must be 1 or 2, got {self.seg.inference_state_offset!r}")
        if self.tokenizer not in ("llama2", "tiny"):
            raise AVBenchError(f"unknown tokenizer kind {self.tokenizer!r}; expected 'llama2' or 'tiny'")


def full_config() -> CrabConfig:
    """Crab as released: LLaMA-2-7B-chat, CLIP ViT-L/14-224, BEATs iter3+ (AS2M), SAM-style decoder."""
    return CrabConfig(
        name="crab-7b",
        llm=dict(
            vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
            num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
            rms_norm_eps=1e-5, rope_theta=10000.0, hidden_act="silu", tie_word_embeddings=False,
            bos_token_id=1, eos_token_id=2, pad_token_id=None,
        ),
        vision=dict(
            hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
            image_size=224, patch_size=14, projection_dim=768, hidden_act="quick_gelu", layer_norm_eps=1e-5,
        ),
        vision_layers=(14, 22, 23),
        audio=_beats_full_cfg(),
        tokenizer="llama2",
    )


def tiny_config(vocab_size: int = 0) -> CrabConfig:
    """crab-tiny: the same architecture at a few million parameters (4.7 M), for CPU tests, smoke runs
    and CPU training.

    The LLM holds most of them (4.1 M: width 256, 4 layers of 4 heads, LLaMA's FFN ratio 8/3 rounded
    up to 688); the encoders, Q-Formers and decoder stay narrow, and 4 queries per frame / audio segment
    keep a 10-frame, 10-segment prompt at 80 media tokens (Crab: 640), so prompts stay a few hundred
    tokens long. `vocab_size` is the tiny tokenizer's base vocabulary (filled in when the tokenizer is
    built).
    """
    return CrabConfig(
        name="crab-tiny",
        llm=dict(
            vocab_size=vocab_size, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
            num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096,
            rms_norm_eps=1e-5, rope_theta=10000.0, hidden_act="silu", tie_word_embeddings=False,
            bos_token_id=None, eos_token_id=None, pad_token_id=None,
        ),
        vision=dict(
            hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=2,
            image_size=224, patch_size=14, projection_dim=64, hidden_act="quick_gelu", layer_norm_eps=1e-5,
        ),
        vision_layers=(1, 2, 3),
        audio=_beats_tiny_cfg(),
        qformer=QFormerSettings(
            hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=128,
            visual_queries=4, audio_queries=4, initializer_range=0.125,
        ),
        seg=SegSettings(
            prompt_embed_dim=32, decoder_depth=2, decoder_heads=2, decoder_mlp_dim=64, avs_query_num=16,
            query_generator_layers=2, query_generator_heads=2, query_generator_hidden=64,
        ),
        ilora=ILoRASettings(r=4, alpha=8),
        tokenizer="tiny",
        # Video-LLaMA's frame position embedding, on the LLM side: a 4-layer LLM trained from scratch
        # for minutes does not learn to count media tokens by their RoPE positions, so without it
        # crab-tiny could tell what is seen but not in which second (docs/training.md).
        time_embeddings=16,
    )


def preset(name: str) -> CrabConfig:
    if name == "full":
        return full_config()
    if name == "tiny":
        return tiny_config()
    raise AVBenchError(f"unknown Crab preset {name!r}; presets: {', '.join(PRESETS)}")


def _beats_full_cfg() -> dict[str, Any]:
    """BEATs iter3+ AS2M fine-tuned (the checkpoint Crab uses): the official cfg's architecture switches."""
    from .beats import BEATsConfig

    return BEATsConfig(
        relative_position_embedding=True, num_buckets=320, max_distance=800, gru_rel_pos=True, deep_norm=True,
        finetuned_model=True, predictor_class=527,
    ).to_dict()


def _beats_tiny_cfg() -> dict[str, Any]:
    from .beats import BEATsConfig

    return BEATsConfig.tiny().to_dict()
