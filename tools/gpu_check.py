"""GPU check of the Crab-style model: peak memory and throughput per task, full size, random weights.

    python tools/gpu_check.py --device cuda --dtype bfloat16              # full preset (7.3 B), one GPU
    python tools/gpu_check.py --preset tiny --device cpu --dtype float32  # the same path on a CPU

For each task (all eight by default) on SynthAV tiny (generated offline on first use, in
$AVBENCH_CACHE), and each batch size (1 and 8 by default), the adapter's own `predict` runs once to warm
up and then `--repeats` times timed: media encoding, prompt assembly, greedy generation of
`--max-new-tokens` tokens (default 32, for every task) and, for the segmentation tasks, the mask
decoder on one group of mask-token states per frame (timed apart: a model with random weights does
not emit mask tokens, so `predict` would never reach the decoder). A task with fewer samples than the
batch repeats them. Reported per row: prompt length (text + media tokens), generated tokens, seconds
per batch (median), samples/s, generated tokens/s, the decoder's seconds, and the peak GPU memory
allocated during the row (weights included; `torch.cuda.max_memory_allocated`). A markdown table is
printed and everything is written as JSON (`--output`).

Nothing is downloaded. The weights are random (`build_model` draws them on the device directly), which
is what timing needs: greedy decoding of random weights rarely hits EOS, so every row generates its
full budget. The LLaMA-2 tokenizer is not available offline, so prompts are tokenised with crab-tiny's
tokenizer while the full model keeps LLaMA-2's vocabulary size (32000 + Crab's 17 tokens; ids the
small tokenizer never produces are simply rows of the embedding and head). Media tokens, which
dominate a full-size prompt (32 per frame and per audio segment: 640 for 10 frames and 10 segments),
are exact; the text part is longer than LLaMA-2's (this tokenizer: about 2 tokens per word on these
prompts, LLaMA-2 typically about 1.3), so the prompts measured here are slightly long, never short.

Sized to finish in a few minutes on one H100 for the defaults; `--tasks`, `--batch-sizes` and
`--max-new-tokens` shrink it (tests/crab/test_gpu_check.py runs the CPU path at tiny sizes).
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch

ALL_TASKS = ("ave", "avvp", "music_avqa", "arig", "s4", "ms3", "avss", "ref_avs")
LLAMA2_VOCAB = 32000  # LLaMA-2's base vocabulary; Crab adds 17 tokens on top


@dataclass
class Row:
    task: str
    batch_size: int
    prompt_tokens_min: int
    prompt_tokens_max: int
    new_tokens: int  # generated tokens in the batch, summed over rows (last timed run)
    seconds_per_batch: float  # median over the timed runs of `predict`
    samples_per_second: float
    tokens_per_second: float
    mask_decoder_seconds: float | None  # segmentation tasks: decoder on every frame of the batch
    peak_memory_gib: float | None  # CUDA only: peak allocated during the row, weights included


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=("full", "tiny"), default="full")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default="bfloat16")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-sizes", default="1,8", help="comma-separated, e.g. 1,8")
    parser.add_argument("--tasks", default=",".join(ALL_TASKS), help="comma-separated task names")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per row after one warm-up run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("gpu_check.json"))
    args = parser.parse_args(argv)
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not args.batch_sizes or min(args.batch_sizes) < 1:
        parser.error("--batch-sizes must list positive integers")
    if args.max_new_tokens < 1 or args.repeats < 1:
        parser.error("--max-new-tokens and --repeats must be >= 1")
    unknown = sorted(set(args.tasks) - set(ALL_TASKS))
    if unknown:
        parser.error(f"unknown tasks {unknown}; known: {', '.join(ALL_TASKS)}")
    return args


def random_crab(preset_name: str, device: torch.device, dtype: torch.dtype, seed: int):
    """A `LoadedCrab` with random weights: crab-tiny's offline tokenizer; for the full preset the LLM
    keeps LLaMA-2's 32000 + 17 rows."""
    from avbench.adapters.crab.checkpoint import LoadedCrab, build_model
    from avbench.adapters.crab.config import preset
    from avbench.adapters.crab.tokenizer import build_tiny_tokenizer, crab_token_ids

    tokenizer = build_tiny_tokenizer()
    config = preset(preset_name)
    base_vocab = len(tokenizer) - len(crab_token_ids(tokenizer)) if preset_name == "tiny" else LLAMA2_VOCAB
    config.llm["vocab_size"] = base_vocab
    config.tokenizer = "tiny"
    torch.manual_seed(seed)
    vocab = len(tokenizer) if preset_name == "tiny" else LLAMA2_VOCAB + len(crab_token_ids(tokenizer))
    model = build_model(config, tokenizer, device=device, dtype=dtype, vocab_size=vocab)
    return LoadedCrab(model, tokenizer, config, "random", Path(f"<random {preset_name}>"), "")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cycle(items: list, n: int) -> list:
    return list(itertools.islice(itertools.cycle(items), n))


def measure_task(adapter, task, data_root: Path, batch_sizes: Sequence[int], repeats: int) -> list[Row]:
    """Rows for one task; media are decoded once, outside the timing (the runner decodes them ahead
    in background threads)."""
    from avbench.adapters.crab.adapter import SEMANTIC_TASKS
    from avbench.adapters.crab.model import SampleInputs
    from avbench.adapters.crab.preprocess import prepare_media
    from avbench.adapters.crab.prompts import chat_prompt, encode
    from avbench.media import decode_media

    model, tokenizer, config = adapter.loaded.model, adapter.loaded.tokenizer, adapter.loaded.config
    device = model.device
    split = task.default_split
    samples = task.load(data_root, split)[: max(batch_sizes)]
    if not samples:
        raise RuntimeError(f"task {task.name!r} has no samples under {data_root}")
    prompts = [task.build_prompt(s) for s in samples]
    media = [decode_media(s, adapter.media_spec) for s in samples]
    adapter.prepare(task, data_root, split)
    generated: list[int] = []
    original_generate = model.generate

    def counting_generate(prepared, max_new_tokens):  # records how many tokens each call produced
        out = original_generate(prepared, max_new_tokens)
        generated.append(sum(len(t) for t in out.tokens))
        return out

    rows = []
    model.generate = counting_generate
    try:
        for batch_size in batch_sizes:
            batch = _cycle(list(zip(samples, prompts, media)), batch_size)
            b_samples, b_prompts, b_media = (list(x) for x in zip(*batch))
            with torch.inference_mode():
                inputs = []
                for sample, prompt, decoded in batch:
                    m = prepare_media(task.name, sample, decoded, config.image_size)
                    ids = encode(tokenizer, chat_prompt(prompt, config.system_prompt, tokenizer.bos_token or "<s>"))
                    inputs.append(SampleInputs(ids, m.pixels.to(adapter.dtype), m.segments, m.is_image))
                prepared = model.prepare_batch(inputs)
            lengths = [p.embeds.shape[0] for p in prepared]
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            adapter.predict(task, b_samples, b_prompts, media=b_media)  # warm-up
            times = []
            for _ in range(repeats):
                _sync(device)
                start = time.perf_counter()
                adapter.predict(task, b_samples, b_prompts, media=b_media)
                _sync(device)
                times.append(time.perf_counter() - start)
            decoder_seconds = None
            if task.output_kind == "mask":
                decoder_seconds = _time_mask_decoder(model, prepared, task.name in SEMANTIC_TASKS, device)
            seconds = statistics.median(times)
            peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
            rows.append(Row(task.name, batch_size, min(lengths), max(lengths), generated[-1], round(seconds, 4),
                            round(batch_size / seconds, 3), round(generated[-1] / seconds, 2),
                            None if decoder_seconds is None else round(decoder_seconds, 4),
                            None if peak is None else round(peak, 3)))
    finally:
        del model.generate  # back to the class's method
    return rows


def _time_mask_decoder(model, prepared, semantic: bool, device: torch.device) -> float:
    """Seconds to decode one mask per frame for every sample of the batch, from random mask-token states."""
    per = model.config.seg.mask_tokens_per_mask
    generator = torch.Generator(device="cpu").manual_seed(0)
    states = [torch.randn(p.frame_features[0].shape[0] * per, model.config.llm_hidden, generator=generator).to(device, model.dtype)
              for p in prepared]
    with torch.inference_mode():
        _sync(device)
        start = time.perf_counter()
        for p, s in zip(prepared, states):
            frames = list(range(p.frame_features[0].shape[0]))
            model.decode_masks(s, p.frame_features, frames, semantic)
        _sync(device)
    return time.perf_counter() - start


def markdown_table(rows: Sequence[Row]) -> str:
    head = ("| task | batch | prompt tokens | new tokens | s / batch | samples / s | tokens / s | mask decoder s "
            "| peak GiB |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        prompt = f"{r.prompt_tokens_min}" if r.prompt_tokens_min == r.prompt_tokens_max else f"{r.prompt_tokens_min}-{r.prompt_tokens_max}"
        decoder = "-" if r.mask_decoder_seconds is None else f"{r.mask_decoder_seconds:.3f}"
        peak = "-" if r.peak_memory_gib is None else f"{r.peak_memory_gib:.2f}"
        lines.append(f"| {r.task} | {r.batch_size} | {prompt} | {r.new_tokens} | {r.seconds_per_batch:.3f} "
                     f"| {r.samples_per_second:.2f} | {r.tokens_per_second:.1f} | {decoder} | {peak} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import transformers

    from avbench.adapters.crab.adapter import CrabAdapter, resolve_device
    from avbench.registry import get_task
    from avbench.synthav import ensure_synthav

    device = resolve_device(args.device)
    dtype = getattr(torch, args.dtype)
    started = time.perf_counter()
    loaded = random_crab(args.preset, device, dtype, args.seed)
    _sync(device)
    build_seconds = time.perf_counter() - started
    weights_gib = torch.cuda.memory_allocated(device) / 2**30 if device.type == "cuda" else None
    adapter = CrabAdapter.from_loaded(loaded, max_new_tokens=args.max_new_tokens, seed=args.seed)
    data_root = ensure_synthav(seed=0, size="tiny")
    rows: list[Row] = []
    for name in args.tasks:
        rows.extend(measure_task(adapter, get_task(name), data_root, args.batch_sizes, args.repeats))
        print(f"{name}: done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    report = {
        "preset": args.preset,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "dtype": args.dtype,
        "parameters": sum(p.numel() for p in loaded.model.parameters()),
        "weights_gib": None if weights_gib is None else round(weights_gib, 3),
        "build_seconds": round(build_seconds, 2),
        "max_new_tokens": args.max_new_tokens,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "total_seconds": round(time.perf_counter() - started, 1),
        "rows": [asdict(r) for r in rows],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    weights = "" if weights_gib is None else f", weights {weights_gib:.2f} GiB"
    count = report["parameters"]
    size = f"{count / 1e9:.2f} B" if count >= 1e9 else f"{count / 1e6:.2f} M"
    print(f"Crab {args.preset} ({size} parameters{weights}), {args.dtype} on "
          f"{report['device_name']}, max {args.max_new_tokens} new tokens, built in {build_seconds:.1f} s\n")
    print(markdown_table(rows))
    print(f"\nwritten to {args.output} ({report['total_seconds']} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
