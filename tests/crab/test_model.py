"""The Crab-style model on crab-tiny: config, tokenizer, prompt assembly, generation, masks, losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avbench.adapters.crab.config import CrabConfig, full_config, tiny_config
from avbench.adapters.crab.mask_decoder import mask_loss
from avbench.adapters.crab.preprocess import listed_frame_positions
from avbench.adapters.crab.prompts import IGNORE_INDEX, chat_prompt, encode, mask_answer
from avbench.adapters.crab.tokenizer import ADDED_TOKENS, build_tiny_tokenizer, crab_token_ids
from avbench.errors import AVBenchError

AV_PROMPT = "This is a video:\n<video_start><video><video_end>\nThis is an audio:\n<audio_start><audio><audio_end>\n"


def _ids(loaded, instruction: str) -> list[int]:
    return encode(loaded.tokenizer, chat_prompt(instruction, loaded.config.system_prompt))


def _media(seed: int, frames: int = 3, segments: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(frames, 3, 224, 224, generator=g), 0.1 * torch.randn(segments, 16000, generator=g)


# ---- config and tokenizer ------------------------------------------------------------------------------


def test_configs_round_trip_through_json_dicts() -> None:
    import json

    for config in (full_config(), tiny_config(vocab_size=100)):
        again = CrabConfig.from_dict(json.loads(json.dumps(config.to_dict())))
        assert again == config
    full = full_config()
    assert full.vision_layers == (14, 22, 23) and full.qformer.visual_queries == full.qformer.audio_queries == 32
    assert (full.seg.prompt_embed_dim, full.seg.decoder_depth, full.seg.mask_tokens_per_mask) == (256, 2, 6)
    assert (full.ilora.r, full.ilora.alpha, full.ilora.n_heads) == (8, 16, 3) and full.patch_grid == 16
    with pytest.raises(AVBenchError, match="unknown Crab config fields"):
        CrabConfig.from_dict({**full.to_dict(), "colour": 1})
    with pytest.raises(AVBenchError, match="vision_layers"):
        CrabConfig.from_dict({**full.to_dict(), "vision_layers": [14, 22, 25]})


def test_tiny_tokenizer_is_deterministic_and_adds_crab_tokens_in_order() -> None:
    first, second = build_tiny_tokenizer(), build_tiny_tokenizer()
    assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()
    ids = crab_token_ids(first)
    base = len(build_tiny_tokenizer(with_crab_tokens=False))
    assert [ids[t] for t in ADDED_TOKENS] == list(range(base, base + 17))
    text = AV_PROMPT + "At the first second, the mask is " + mask_answer(1) + ". Straße 42 <answer>yes</answer>"
    encoded = encode(first, text)
    assert first.decode(encoded) == text  # byte-level: anything round-trips
    assert encoded.count(ids["<video>"]) == 1 and sum(encoded.count(ids[f"<mask_{i}>"]) for i in range(6)) == 6


def test_chat_prompt_is_llama2_chat_template() -> None:
    assert chat_prompt("Hi there \n", "You are a helpful assistant.") == (
        "<s>[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nHi there [/INST]"
    )


# ---- prompt assembly --------------------------------------------------------------------------------------


def test_placeholders_are_replaced_by_the_right_number_of_media_tokens(tiny_crab) -> None:
    model, config = tiny_crab.model, tiny_crab.config
    ids = _ids(tiny_crab, AV_PROMPT + "Please answer.")
    pixels, segments = _media(0, frames=5, segments=10)
    with torch.no_grad():
        prepared = model.prepare(ids, pixels, segments)
        video, _ = model.encode_frames(pixels)
        audio = model.encode_audio(segments)
        text = model.embed_tokens(torch.tensor(ids))
    q = config.qformer
    assert prepared.media_counts == {"<video>": 5 * q.visual_queries, "<audio>": 10 * q.audio_queries}
    assert prepared.embeds.shape == (len(ids) - 2 + 5 * q.visual_queries + 10 * q.audio_queries, config.llm_hidden)
    v = ids.index(model.token_ids.added["<video>"])
    a = ids.index(model.token_ids.added["<audio>"])
    n_v = video.shape[0]
    torch.testing.assert_close(prepared.embeds[:v], text[:v])
    torch.testing.assert_close(prepared.embeds[v : v + n_v], video)
    torch.testing.assert_close(prepared.embeds[v + n_v : a - 1 + n_v], text[v + 1 : a])
    torch.testing.assert_close(prepared.embeds[a - 1 + n_v : a - 1 + n_v + audio.shape[0]], audio)
    torch.testing.assert_close(prepared.embeds[a - 1 + n_v + audio.shape[0] :], text[a + 1 :])
    assert (prepared.token_ids == -1).sum() == n_v + audio.shape[0]

    image_ids = _ids(tiny_crab, "This is an image:\n<image_start><image><image_end>\n" + AV_PROMPT.split("\n", 2)[2])
    with torch.no_grad():
        still = model.prepare(image_ids, pixels[:1], segments[:5], is_image=True)
    assert still.media_counts == {"<image>": q.visual_queries, "<audio>": 5 * q.audio_queries}
    with pytest.raises(AVBenchError, match="<video> but the sample has no media"):
        model.prepare(ids, None, segments)


def test_time_embeddings_add_each_frame_and_segment_index_to_its_tokens(tiny_crab) -> None:
    """Frame k's (audio segment k's) media tokens get row k of the time table; a still image and its audio get
    none; Crab itself (full preset) has no table, the tiny preset's starts at zero (the model without it)."""
    import copy

    assert full_config().time_embeddings == 0 and tiny_crab.config.time_embeddings == 16
    assert not tiny_crab.model.visual_time.weight.any() and not tiny_crab.model.audio_time.weight.any()
    model, q = copy.deepcopy(tiny_crab.model), tiny_crab.config.qformer
    ids = _ids(tiny_crab, AV_PROMPT + "When?")
    pixels, segments = _media(5, frames=3, segments=4)
    with torch.no_grad():
        before = model.prepare(ids, pixels, segments)
        model.visual_time.weight.copy_(torch.arange(16.0)[:, None].expand(-1, tiny_crab.config.llm_hidden))
        model.audio_time.weight.copy_(-torch.arange(16.0)[:, None].expand(-1, tiny_crab.config.llm_hidden))
        after = model.prepare(ids, pixels, segments)
        image_ids = _ids(tiny_crab, "This is an image:\n<image_start><image><image_end>\n" + AV_PROMPT.split("\n", 2)[2])
        still = [m.prepare(image_ids, pixels[:1], segments[:1], is_image=True) for m in (tiny_crab.model, model)]
    added = (after.embeds - before.embeds)[:, 0]
    v = ids.index(model.token_ids.added["<video>"])
    a = ids.index(model.token_ids.added["<audio>"]) - 1 + 3 * q.visual_queries
    expected = torch.zeros_like(added)
    expected[v : v + 3 * q.visual_queries] = torch.arange(3.0).repeat_interleave(q.visual_queries)
    expected[a : a + 4 * q.audio_queries] = -torch.arange(4.0).repeat_interleave(q.audio_queries)
    torch.testing.assert_close(added, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(still[0].embeds, still[1].embeds)
    with pytest.raises(ValueError, match="17 frames or audio segments, but time embeddings for 16"):
        model.prepare(ids, _media(6, frames=17)[0], segments)


def test_batched_media_encoding_equals_per_sample_encoding(tiny_crab) -> None:
    """One CLIP call for all frames and one BEATs call per segment length give each sample exactly what
    encoding it alone gives (float32, 1e-5): videos and an image, 1 s and 2 s segments, a silent sample."""
    from avbench.adapters.crab.model import SampleInputs

    model = tiny_crab.model
    image_prompt = "This is an image:\n<image_start><image><image_end>\n" + AV_PROMPT.split("\n", 2)[2] + "Where?"
    g = torch.Generator().manual_seed(7)
    items = [
        SampleInputs(_ids(tiny_crab, AV_PROMPT + "What happens?"), *_media(1, frames=3, segments=10)),
        SampleInputs(_ids(tiny_crab, image_prompt), _media(2, frames=1)[0], _media(2, segments=5)[1], is_image=True),
        SampleInputs(_ids(tiny_crab, "This is a video:\n<video_start><video><video_end>\nGo"), _media(3, frames=2)[0], None),
        SampleInputs(_ids(tiny_crab, AV_PROMPT + "Which instrument?"), _media(4, frames=4)[0], 0.1 * torch.randn(3, 32000, generator=g)),
    ]
    with torch.no_grad():
        batched = model.prepare_batch(items)
        for item, together in zip(items, batched):
            alone = model.prepare(item.input_ids, item.pixels, item.segments, item.is_image)
            assert together.media_counts == alone.media_counts and torch.equal(together.token_ids, alone.token_ids)
            torch.testing.assert_close(together.embeds, alone.embeds, rtol=1e-5, atol=1e-5)
            for a, b in zip(together.frame_features, alone.frame_features, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert batched[3].media_counts["<audio>"] == 3 * tiny_crab.config.qformer.audio_queries


def test_listed_frames_are_recovered_from_the_repeated_decoded_frames() -> None:
    assert listed_frame_positions(5, 10) == [0, 2, 4, 6, 8]
    assert listed_frame_positions(10, 10) == list(range(10))
    # sub-sampled: 10 listed frames decoded as 5 (frames 1, 3, 5, 7, 9): an unpicked frame maps to the
    # nearest picked one, the earlier on a tie (frame 2 lies between 1 and 3 -> position 0)
    assert listed_frame_positions(10, 5) == [0, 0, 0, 1, 1, 2, 2, 3, 3, 4]


# ---- generation -----------------------------------------------------------------------------------------


def _three_samples(tiny_crab):
    model = tiny_crab.model
    prompts = [AV_PROMPT + "Please answer.", AV_PROMPT + "Please answer this longer question about the music.", AV_PROMPT + "Go"]
    with torch.no_grad():
        return [model.prepare(_ids(tiny_crab, p), *_media(seed, frames=seed + 1)) for seed, p in enumerate(prompts)]


def test_left_padded_batch_generates_exactly_what_each_sample_generates_alone(tiny_crab) -> None:
    model = tiny_crab.model
    samples = _three_samples(tiny_crab)
    assert len({s.embeds.shape[0] for s in samples}) == 3  # really different lengths, so padding happens
    batched = model.generate(samples, max_new_tokens=12)
    for index, sample in enumerate(samples):
        alone = model.generate([sample], max_new_tokens=12)
        assert batched.tokens[index] == alone.tokens[0]
        torch.testing.assert_close(batched.states[index], alone.states[0], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(batched.prompt_states[index], alone.prompt_states[0], rtol=1e-4, atol=1e-4)
        assert len(alone.tokens[0]) == 12 or model.token_ids.eos not in alone.tokens[0]


def test_generation_states_are_the_states_that_predicted_each_token(tiny_crab) -> None:
    """Teacher-forcing the generated answer gives the same next-token logits at every step: the KV
    cache path is right, each kept state is the one before its token, and the prompt state is the one
    before the prompt's last token."""
    model = tiny_crab.model
    sample = _three_samples(tiny_crab)[1]
    generated = model.generate([sample], max_new_tokens=10)
    tokens, states = generated.tokens[0], generated.states[0]
    answer = model.embed_tokens(torch.tensor(tokens))
    from avbench.adapters.crab.model import PreparedSample

    full = PreparedSample(torch.cat([sample.embeds, answer]), None, torch.cat([sample.token_ids, torch.tensor(tokens)]), None)
    with torch.no_grad():
        logits = model([full]).logits[0]
    start = sample.embeds.shape[0] - 1
    forced = logits[start : start + len(tokens)]
    assert forced.argmax(-1).tolist() == tokens
    torch.testing.assert_close(model.causal_lm.lm_head(states), forced, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(model.causal_lm.lm_head(generated.prompt_states[0]), logits[start - 1], rtol=1e-4, atol=1e-4)


def _crab_generate_avs_decoder_input(lm, prompt_embeds: torch.Tensor, script: list[int], mask_ids: set[int]) -> torch.Tensor:
    """What Crab's inference hands its mask decoder (GeWu-Lab/Crab `models/unified_llama.py`,
    `UnifiedForCausalLM.generate_avs`, batch of one), rebuilt on transformers' own `generate` with the
    answer forced: generating from `inputs_embeds` returns the new tokens only; generated tokens 1, 2, ...
    (`output_ids[:, 1:]`) are paired with `hidden_states` steps 0, 1, ...; for each mask token the last
    layer of its paired step is kept (step 0's covers the whole prompt), concatenated along the
    sequence, and the last 6 kept states are the decoder input."""
    from transformers import LogitsProcessor, LogitsProcessorList

    class Force(LogitsProcessor):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            forced = torch.full_like(scores, float("-inf"))
            forced[:, script[input_ids.shape[1]]] = 0.0
            return forced

    out = lm.generate(inputs_embeds=prompt_embeds[None], attention_mask=torch.ones(1, prompt_embeds.shape[0], dtype=torch.long),
                      max_new_tokens=len(script), do_sample=False, logits_processor=LogitsProcessorList([Force()]),
                      output_hidden_states=True, return_dict_in_generate=True, pad_token_id=0, eos_token_id=None)
    assert out.sequences[0].tolist() == script  # new tokens only, as in the transformers 4.37 Crab used
    kept = [step[-1] for token, step in zip(out.sequences[0, 1:].tolist(), out.hidden_states) if token in mask_ids]
    return torch.cat(kept, dim=1)[0, -6:]


@pytest.mark.parametrize("lead", ["The sounding object is a dog. Its mask is ", "<mask_start>", ""])
def test_mask_states_are_what_crab_inference_feeds_its_decoder(tiny_crab, monkeypatch, scripted_head, lead: str) -> None:
    """Our loop + `mask_groups` against Crab's indexing of transformers' `generate` output, with the
    mask group after text, right after the first token (Crab's step-0 entry then holds the whole
    prompt) and at the very start (mask token 0 then takes the prompt's second-to-last state)."""
    model, tokenizer = tiny_crab.model, tiny_crab.tokenizer
    mask_ids = set(model.token_ids.mask_ids)
    text = lead + "<mask_0><mask_1><mask_2><mask_3><mask_4><mask_5>" if lead != "<mask_start>" else mask_answer(1)
    script = encode(tokenizer, text + " Done.")
    sample = _three_samples(tiny_crab)[2]
    with torch.no_grad():
        crab = _crab_generate_avs_decoder_input(model.causal_lm, sample.embeds, script, mask_ids)
        with scripted_head(model.causal_lm, script):
            generated = model.generate([sample], max_new_tokens=len(script))
    assert generated.tokens[0] == script
    ours = model.mask_groups(generated.tokens[0], generated.states[0], generated.prompt_states[0])
    torch.testing.assert_close(ours, crab, rtol=1e-4, atol=1e-4)
    # and the training position (offset 1) is a different set of states
    monkeypatch.setattr(model.config.seg, "inference_state_offset", 1)
    training = model.mask_groups(generated.tokens[0], generated.states[0], generated.prompt_states[0])
    first = next(j for j, t in enumerate(script) if t in mask_ids)
    torch.testing.assert_close(training, generated.states[0][first : first + 6])
    assert not torch.allclose(training, crab, atol=1e-2)


def test_mask_groups_keeps_whole_groups_and_skips_a_first_mask_token_without_a_state(tiny_crab) -> None:
    model = tiny_crab.model
    mask = model.token_ids.mask_ids
    states = torch.arange(15.0)[:, None].expand(15, 3)
    before = torch.full((3,), -1.0)
    tokens = mask + [7] + mask[:2] + [7] + mask[:5]  # 6 + 2 + 5 mask tokens: two whole groups, 1 left over
    got = model.mask_groups(tokens, states, before)[:, 0].tolist()
    assert got == [-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 7.0, 9.0, 10.0, 11.0, 12.0]
    # a one-token prompt has no state before the first generated token: that mask token drops out
    assert model.mask_groups(tokens, states, None)[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 7.0, 9.0, 10.0, 11.0, 12.0, 13.0]


# ---- masks and losses --------------------------------------------------------------------------------------


def test_each_mask_group_is_decoded_against_its_own_frame(tiny_crab) -> None:
    model = tiny_crab.model
    with torch.no_grad():
        _, features = model.encode_frames(_media(3, frames=4)[0])
        states = torch.randn(12, tiny_crab.config.llm_hidden, generator=torch.Generator().manual_seed(0))
        both = model.decode_masks(states, features, [2, 0], semantic=False)
        first = model.decode_masks(states[:6], features, [2], semantic=False)
        second = model.decode_masks(states[6:], features, [0], semantic=False)
        semantic = model.decode_masks(states, features, [1, 3], semantic=True)
    assert both.shape == (2, 1, 224, 224) and semantic.shape == (2, 71, 224, 224)
    torch.testing.assert_close(both[0], first[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(both[1], second[0], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(first[0], model.decode_masks(states[:6], features, [3], semantic=False)[0])
    with pytest.raises(ValueError, match="do not make 3 groups"):
        model.decode_masks(states, features, [0, 1, 2], semantic=False)


def test_mask_losses_by_hand() -> None:
    # logits 0 -> p = 0.5 on 4 pixels, one foreground: BCE = ln 2; Dice = 1 - (2*0.0005 + 1e-6) / (0.002 + 0.001 + 1e-6)
    target = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    dice = 1 - (0.001 + 1e-6) / (0.003 + 1e-6)
    assert mask_loss(torch.zeros(1, 1, 2, 2), target, semantic=False).item() == pytest.approx(math.log(2) + 0.5 * dice, rel=1e-6)
    # uniform logits over 4 classes: CE = ln 4 per pixel, summed over 2 masks
    labels = torch.tensor([[[0, 1], [2, 3]], [[3, 3], [3, 3]]])
    assert mask_loss(torch.zeros(2, 4, 2, 2), labels, semantic=True).item() == pytest.approx(2 * math.log(4), rel=1e-6)


def test_training_forward_gives_lm_loss_and_mask_logits_from_the_state_before_each_mask_token(tiny_crab) -> None:
    model = tiny_crab.model
    prompt = _ids(tiny_crab, AV_PROMPT + "Segment the sounding object in both frames.")
    answer = encode(tiny_crab.tokenizer, "First: " + mask_answer(1) + " then: " + mask_answer(1)) + [model.token_ids.eos]
    labels = [IGNORE_INDEX] * len(prompt) + answer
    pixels, segments = _media(5, frames=2)
    with torch.no_grad():
        sample = model.prepare(prompt + answer, pixels, segments, labels=labels)
        short = model.prepare(prompt[:5], pixels, None, labels=[IGNORE_INDEX] * 4 + [prompt[4]])
        targets = torch.zeros(2, 224, 224)
        targets[0, :100, :100] = 1
        out = model([short, sample], mask_frames=[None, [1, 0]], mask_targets=[None, targets])
    # LM loss: mean next-token cross-entropy over the labelled tokens of both rows
    logits = out.logits
    rows = []
    for row, prepared in enumerate((short, sample)):
        offset = logits.shape[1] - prepared.embeds.shape[0]
        lab = prepared.labels
        for i in range(1, lab.shape[0]):
            if lab[i] != IGNORE_INDEX:
                rows.append(torch.nn.functional.cross_entropy(logits[row, offset + i - 1][None], lab[i][None]))
    torch.testing.assert_close(out.lm_loss, torch.stack(rows).mean(), rtol=1e-5, atol=1e-6)
    # masks: the states one position before the 12 mask tokens, groups decoded against frames 1 and 0
    positions = [i - 1 for i, t in enumerate(sample.token_ids.tolist()) if t in model.token_ids.mask_ids]
    assert len(positions) == 12
    with torch.no_grad():
        hidden = model.causal_lm.model(inputs_embeds=sample.embeds[None]).last_hidden_state[0]
        expected = model.decode_masks(hidden[positions], sample.frame_features, [1, 0], semantic=False)
    torch.testing.assert_close(out.mask_logits[1], expected, rtol=1e-4, atol=1e-4)
    assert out.mask_logits[0] is None
    torch.testing.assert_close(out.mask_loss, mask_loss(expected, targets, semantic=False), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.loss, out.lm_loss + out.mask_loss)


def test_the_adapted_llm_trains_only_ilora_weights_and_gradients_flow(tiny_crab) -> None:
    model = tiny_crab.model
    trainable = [n for n, p in model.llm.named_parameters() if p.requires_grad]
    assert trainable and all(any(k in n for k in ("lora_A", "lora_B", "lora_route")) for n in trainable)
    prompt = _ids(tiny_crab, "Hello")
    sample = model.prepare(prompt, None, None, labels=[IGNORE_INDEX] + prompt[1:])
    out = model([sample])
    out.loss.backward()
    grads = {n: p.grad for n, p in model.llm.named_parameters() if p.requires_grad}
    # B starts at zero, so only B (and not A or the router) gets a gradient on the first step
    assert all(g is not None and np.isfinite(g.numpy()).all() for n, g in grads.items() if "lora_B" in n)
    assert any(g.abs().sum() > 0 for n, g in grads.items() if "lora_B" in n)
    model.zero_grad(set_to_none=True)


def test_tiny_preset_has_a_few_million_parameters_mostly_in_the_llm(tiny_crab) -> None:
    model, config = tiny_crab.model, tiny_crab.config
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    vocab, d, ffn, layers = len(tiny_crab.tokenizer), 256, 688, 4
    assert (config.llm_hidden, config.llm["intermediate_size"], config.llm["num_hidden_layers"], vocab) == (d, ffn, layers, 1402)
    # LLaMA: embeddings + head, per layer q/k/v/o + gate/up/down + 2 RMSNorms, final norm
    base = 2 * vocab * d + layers * (4 * d * d + 3 * d * ffn + 2 * d) + d
    # I-LoRA, r 4, 3 heads, per linear in -> out: A 4*in, B out*12, router 3*in
    lora = lambda i, o: 4 * i + 12 * o + 3 * i  # noqa: E731
    ilora = layers * (4 * lora(d, d) + 2 * lora(d, ffn) + lora(ffn, d))
    assert count(model.llm) == base + ilora == 4_072_000
    total = count(model)
    assert 3_000_000 < total < 5_000_000 and count(model.llm) > 0.8 * total
    # a 10-frame, 10-segment prompt gets 4 + 4 tokens per frame / segment
    assert 10 * config.qformer.visual_queries + 10 * config.qformer.audio_queries == 80


def test_full_preset_has_llama2_7b_clip_large_and_crab_ilora_sizes() -> None:
    """Built on the meta device (no memory): parameter counts against the published model sizes."""
    from avbench.adapters.crab.model import CrabModel, TokenIds

    ids = TokenIds({t: 32000 + i for i, t in enumerate(ADDED_TOKENS)}, pad=2, eos=2)
    with torch.device("meta"):
        model = CrabModel(full_config(), 32017, ids)
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    lora = sum(p.numel() for n, p in model.llm.named_parameters() if "lora_" in n)
    # I-LoRA per adapted linear (in -> out): A r*in, B out*(heads*r), router heads*in; r 8, 3 heads
    per_linear = lambda i, o: 8 * i + o * 24 + 3 * i  # noqa: E731
    per_layer = 4 * per_linear(4096, 4096) + 2 * per_linear(4096, 11008) + per_linear(11008, 4096)
    assert lora == 32 * per_layer == 45_162_496
    # LLaMA-2-7B has 6,738,415,616 parameters; Crab adds 17 rows to the embeddings and the LM head
    assert count(model.llm) - lora == 6_738_415_616 + 2 * 17 * 4096
    assert count(model.vision) == 303_179_776  # CLIP ViT-L/14 vision tower
    assert model.visual_resampler.query_tokens.shape == (1, 32, 768)
    assert model.visual_projector[2].weight.shape == (4096, 4096) and model.audio_projector[0].weight.shape == (4096, 768)
    assert model.visual_resampler.qformer.encoder.layer[0].crossattention.attention.key.weight.shape == (768, 1024)
    assert model.audio_resampler.qformer.encoder.layer[1].crossattention.attention.key.weight.shape == (768, 768)
    assert model.seg.decoder.avs_query_tokens.weight.shape == (300, 256) and model.seg.neck[0].weight.shape == (256, 1024, 1, 1)
