"""Masks bounded by the answer's words (`SegSettings.masks_follow_answer`, avbench's, off for Crab's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avbench.adapters.crab.adapter import CrabAdapter
from avbench.adapters.crab.answer_masks import label_foreground, named_classes, says_absent
from avbench.adapters.crab.config import SegSettings, full_config, tiny_config
from avbench.adapters.crab.generation import Generation
from avbench.adapters.crab.prompts import encode, mask_answer
from avbench.media import decode_media
from avbench.registry import get_model, get_task
from avbench.vocab import AVSS_CLASSES

LION, DOG, CAR, EMERGENCY_CAR = (AVSS_CLASSES.index(n) for n in ("lion", "dog", "car", "emergency-car"))


def test_presets_leave_it_off_and_results_say_which_decoding_ran(adapter: CrabAdapter, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not SegSettings().masks_follow_answer
    assert not full_config().seg.masks_follow_answer and not tiny_config().seg.masks_follow_answer
    # the checkpoint hash covers the weights only: results.json's model section names the decoding too
    assert adapter.describe()["masks_follow_answer"] is True
    monkeypatch.setattr(adapter.loaded.model.config.seg, "masks_follow_answer", False)
    assert adapter.describe()["masks_follow_answer"] is False


def test_named_classes_are_whole_words_in_order_of_first_mention() -> None:
    assert named_classes("The sounding objects are lion and dog.", AVSS_CLASSES) == [LION, DOG]
    assert named_classes("The sounding objects are dog and dog and Lions.", AVSS_CLASSES) == [DOG, LION]
    # the longer name wins where both start; separators may be hyphen, underscore or space
    assert named_classes("an emergency car, an Emergency_Car and a car", AVSS_CLASSES) == [EMERGENCY_CAR, CAR]
    assert named_classes("a hair dryer", AVSS_CLASSES) == [AVSS_CLASSES.index("hair-dryer")]
    # parts of words and the background class are not names
    assert named_classes("The sounding objects are in the background of the video, doggedly.", AVSS_CLASSES) == []
    assert named_classes("a woman", AVSS_CLASSES) == [AVSS_CLASSES.index("woman")]


def test_says_absent_reads_the_tasks_phrase_whatever_the_case_and_spacing() -> None:
    phrase = get_task("ref_avs").absent_phrase
    assert phrase == "is not in the video"
    assert says_absent("The sounding object IS  not in the\nvideo.", phrase)
    assert not says_absent("The sounding object is the dog.", phrase)
    assert not says_absent("The sounding object is not in the video.", None)  # a task without the phrase


def test_label_foreground_by_hand() -> None:
    binary = torch.tensor([[[2.0, -1.0], [0.0, 0.5]]])  # foreground where > 0: (0, 0) and (1, 1)
    classes = torch.zeros(1, 5, 2, 2)
    classes[0, 3, 0, 0], classes[0, 1, 1, 1] = 4.0, 2.0
    classes[0, 4] = 9.0  # the highest everywhere, but not named
    labels = label_foreground(binary, classes, [1, 3])
    assert labels.tolist() == [[[3, 0], [0, 1]]]


# ---- in the adapter ------------------------------------------------------------------------------------
@pytest.fixture()
def adapter(tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> CrabAdapter:
    adapter = get_model("crab", checkpoint=str(tiny_checkpoint), max_new_tokens=6)
    monkeypatch.setattr(adapter.loaded.model.config.seg, "masks_follow_answer", True)
    return adapter


def _predict(adapter: CrabAdapter, root: Path, task_name: str, words: str, monkeypatch: pytest.MonkeyPatch):
    """The adapter's maps for an answer of `words` then one mask group per frame (generation stubbed)."""
    task = get_task(task_name)
    sample = task.load(root, task.default_split)[0]
    model, tokenizer = adapter.loaded.model, adapter.loaded.tokenizer
    n_frames = len(sample.media["frames"])
    answer = encode(tokenizer, words + " " + mask_answer(n_frames))
    generator = torch.Generator().manual_seed(1)
    states = torch.randn(len(answer), adapter.loaded.config.llm_hidden, generator=generator)
    prompt_state = torch.randn(adapter.loaded.config.llm_hidden, generator=generator)
    monkeypatch.setattr(model, "generate", lambda prepared, budget: Generation([answer], [states], [prompt_state]))
    media = [decode_media(sample, adapter.media_spec)]
    return adapter.predict(task, [sample], [task.build_prompt(sample)], media=media)[0].masks, n_frames


def test_an_answer_that_says_its_referent_is_absent_gets_empty_masks(
        adapter: CrabAdapter, synthav_tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    present, n_frames = _predict(adapter, synthav_tiny, "ref_avs", "The sounding object is the dog.", monkeypatch)
    absent, _ = _predict(adapter, synthav_tiny, "ref_avs", "The sounding object is not in the video.", monkeypatch)
    assert len(absent) == n_frames and all(m.shape == (224, 224) and not m.any() for m in absent)
    assert all(m.min() > 0 for m in present)  # the decoder's sigmoid maps otherwise
    # S4 has no phrase for absence: its masks are the decoder's whatever the words
    s4, _ = _predict(adapter, synthav_tiny, "s4", "The sounding object is not in the video.", monkeypatch)
    assert all(m.min() > 0 for m in s4)
    monkeypatch.setattr(adapter.loaded.model.config.seg, "masks_follow_answer", False)
    ignored, _ = _predict(adapter, synthav_tiny, "ref_avs", "The sounding object is not in the video.", monkeypatch)
    assert len(ignored) == n_frames and all(m.min() > 0 for m in ignored)  # Crab's behaviour: the words do not count


def test_an_avss_map_labels_the_binary_foreground_with_the_named_classes(
        adapter: CrabAdapter, synthav_tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = adapter.loaded.model
    calls: list[bool] = []
    decode = model.decode_masks

    def spy(states, features, frames, semantic, size=None):
        logits = decode(states, features, frames, semantic, size)
        if not semantic:  # an untrained decoder's binary logits are all > 0: centre them, half foreground
            logits = logits - logits.median()
        calls.append(semantic)
        spy.logits[semantic] = logits
        return logits

    spy.logits = {}
    monkeypatch.setattr(model, "decode_masks", spy)
    maps, n_frames = _predict(adapter, synthav_tiny, "avss", "The sounding objects are lion and dog.", monkeypatch)
    assert sorted(calls) == [False, True]
    foreground = (spy.logits[False][:, 0] > 0).numpy()
    assert 0 < foreground.mean() < 1
    for k, labels in enumerate(maps):
        assert labels.dtype == np.int64 and set(np.unique(labels)) <= {0, LION, DOG}
        assert np.array_equal(labels != 0, foreground[k])
        expected = np.where(spy.logits[True][k, DOG] > spy.logits[True][k, LION], DOG, LION)
        assert np.array_equal(labels[foreground[k]], expected[foreground[k]])
    # an answer naming no AVSS class keeps Crab's 71-way arg-max
    calls.clear()
    maps, _ = _predict(adapter, synthav_tiny, "avss", "The sounding objects are loud.", monkeypatch)
    assert calls == [True] and np.array_equal(maps[0], spy.logits[True][0].argmax(0).numpy())
