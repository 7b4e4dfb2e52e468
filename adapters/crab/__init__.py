"""The Crab-style audio-visual LLM (Crab, CVPR 2025; GeWu-Lab/Crab) on transformers and peft.

Modules, one concern each (docs/crab.md has the architecture, checkpoint layouts and key mapping):
config (presets `full` / `tiny`), tokenizer (Crab's added tokens; crab-tiny's offline tokenizer),
vision (CLIP multi-layer patch features), beats + fbank (BEATs audio encoder), qformer (Q-Former
resampler), projector (MLP into the LLM), ilora (interaction-aware LoRA), mask_decoder (SAM-style
multi-scale decoder and mask losses), prompts (chat framing, placeholder splicing), preprocess
(decoded media -> model inputs per task), generation (greedy batched decoding with KV cache),
model (the composition; training forward), checkpoint (our layout, detection, strict loading),
official (the public release's layout), adapter (`--model crab`).

Nothing is imported here: `avbench models` and the registry stay fast without torch.
"""
