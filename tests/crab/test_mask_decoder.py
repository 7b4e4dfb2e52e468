"""The mask decoder's optional prompt conditioning (`SegSettings.prompt_conditioning`, avbench's, not Crab's)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from avbench.adapters.crab.config import SegSettings, full_config, tiny_config
from avbench.adapters.crab.mask_decoder import SegmentationHead

LLM, VISION, GRID, IMAGE = 24, 20, 4, 32


def _head(conditioning: bool, seed: int = 0) -> SegmentationHead:
    seg = dataclasses.replace(tiny_config().seg, prompt_conditioning=conditioning)
    torch.manual_seed(seed)
    return SegmentationHead(seg, LLM, VISION, GRID, IMAGE).eval()


def _inputs(groups: int = 2, seed: int = 1) -> tuple[torch.Tensor, list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    states = torch.randn(groups, 6, LLM, generator=generator)
    features = [torch.randn(groups, GRID * GRID, VISION, generator=generator) for _ in range(2)]
    return states, features


def test_presets_have_no_conditioning_so_their_checkpoints_load_as_trained() -> None:
    assert SegSettings().prompt_conditioning is False
    assert full_config().seg.prompt_conditioning is False
    assert tiny_config().seg.prompt_conditioning is False
    assert not any("prompt_conditioning" in key for key in _head(False).state_dict())


def test_conditioning_starts_as_crabs_binary_decoder_and_leaves_the_rng_stream_alone() -> None:
    plain, conditioned = _head(False), _head(True)
    shared = plain.state_dict()
    for key, value in conditioned.state_dict().items():
        if "prompt_conditioning" in key:
            assert torch.count_nonzero(value) == 0, key
        else:
            assert torch.equal(shared[key], value), key  # built without drawing from the RNG
    states, features = _inputs()
    with torch.no_grad():
        binary = conditioned(states, features, semantic=False)
        assert torch.equal(plain(states, features, semantic=False), binary)
        semantic = conditioned(states, features, semantic=True)
    # untrained class head: background 0, every class exactly the binary logit
    assert semantic.shape[1] == 71
    assert torch.equal(semantic[:, 0], torch.zeros_like(semantic[:, 0]))
    torch.testing.assert_close(semantic[:, 1:], binary.expand_as(semantic[:, 1:]), rtol=0, atol=1e-6)


def test_binary_bias_can_ask_for_an_empty_mask() -> None:
    head = _head(True)
    bias = head.decoder.prompt_conditioning.binary_bias
    states, features = _inputs()
    with torch.no_grad():
        before = head(states, features, semantic=False)
        bias.bias.fill_(-3.0)
        after = head(states, features, semantic=False)
        bias.bias.fill_(1000.0)
        full = head(states, features, semantic=False)
        bias.bias.fill_(-1000.0)
        empty = head(states, features, semantic=False)
    assert (full > 0).all()
    # each scale adds -3 with weight 1/2; the second scale's gate reads the first scale's logits, so the
    # shift is -3 up to the gate's change
    assert (after - before).mean().item() == pytest.approx(-3.0, abs=0.05)
    assert (empty < 0).all()


def test_avss_map_is_the_prompts_likeliest_class_where_the_binary_mask_is_on() -> None:
    head = _head(True)
    conditioning = head.decoder.prompt_conditioning
    states, features = _inputs(groups=2)
    with torch.no_grad():
        # spread the binary logits (FiLM) so that the mask is on at some pixels only
        conditioning.film.weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(3))
        prompts = head.text_fc(states).view(2, 2, 3, -1).mean(dim=2)  # (group, scale, C)
        # class 5 (row 4: rows skip background) for the first group's prompts, class 9 (row 8) for the second's
        direction = (prompts[0] - prompts[1]).mean(dim=0)
        middle = (prompts[0] + prompts[1]).mean(dim=0) / 2
        unit = direction / (direction @ direction)
        conditioning.class_head.weight[4], conditioning.class_head.bias[4] = 40.0 * unit, -40.0 * (middle @ unit)
        conditioning.class_head.weight[8], conditioning.class_head.bias[8] = -40.0 * unit, 40.0 * (middle @ unit)
        score = prompts @ conditioning.class_head.weight[4] + conditioning.class_head.bias[4]
        assert (score[0] > 10).all() and (score[1] < -10).all()  # both scales agree
        conditioning.binary_bias.bias.fill_(-head(states, features, semantic=False).median().item())
        binary = head(states, features, semantic=False)
        labels = head(states, features, semantic=True).argmax(dim=1)
    assert (binary > 0).any() and (binary <= 0).any()
    assert torch.equal(labels, torch.where(binary[:, 0] > 0, torch.tensor([5, 9]).view(2, 1, 1), torch.tensor(0)))


def test_film_makes_masks_depend_on_the_prompt() -> None:
    head = _head(True)
    states, features = _inputs(groups=1)
    other = states + torch.randn(states.shape, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        same = head(states, features, False) - head(other, features, False)
        head.decoder.prompt_conditioning.film.weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(3))
        differ = head(states, features, False) - head(other, features, False)
    # without conditioning the prompt only shifts the queries; with FiLM it rescales the image embedding
    assert differ.abs().mean() > 10 * same.abs().mean()


@pytest.mark.parametrize("conditioning", [False, True])
def test_gradients_reach_the_prompt_states(conditioning: bool) -> None:
    head = _head(conditioning).train()
    states, features = _inputs(groups=1)
    states.requires_grad_(True)
    head(states, features, False).sum().backward()
    assert states.grad is not None and states.grad.abs().sum() > 0
    if conditioning:  # zero-initialised layers still get a gradient for their weights
        assert head.decoder.prompt_conditioning.film.weight.grad.abs().sum() > 0
        assert head.decoder.prompt_conditioning.binary_bias.weight.grad.abs().sum() > 0
        states.grad = None
        head(states, features, True).logsumexp(dim=1).sum().backward()
        assert head.decoder.prompt_conditioning.class_head.weight.grad.abs().sum() > 0
