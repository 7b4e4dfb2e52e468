"""AVVP parser on Crab-style answers: `<audio>Class,(s e)</audio>` / `<visual>...</visual>` (docs/parsing.md)."""

from __future__ import annotations

import pytest

from avbench.errors import ParseError
from avbench.tasks.avvp import AVVPTask
from avbench.types import ModelOutput

from parser_cases import avvp_sample

TASK = AVVPTask()


def parse(text: str) -> dict:
    return TASK.parse(ModelOutput(text), avvp_sample())


@pytest.mark.parametrize("text, audio, visual", [
    # Crab's README answer, verbatim.
    ("The video shows a man using a chainsaw to cut a tree. The chainsaw is visible and running from the beginning "
     "of the video (0 seconds) to the end (10 seconds). Therefore, visual and audio events are: "
     "<visual>Chainsaw,(0 10)</visual> and <audio>Chainsaw,(0 10)</audio>",
     {"Chainsaw": [[0, 10]]}, {"Chainsaw": [[0, 10]]}),
    # Crab's training tags, several ranges of one class, an end-of-sequence token.
    ("A man talks to the camera, pausing in the middle. <audio_event>Speech,(0 4),(6 10)</audio_event> "
     "<visual_event>Speech,(0 10)</visual_event></s>",
     {"Speech": [[0, 4], [6, 10]]}, {"Speech": [[0, 10]]}),
    # One tag per event; the reasoning names a silent car, only the tags count.
    ("A dog runs around while a man talks. Although a car is visible in the background, it makes no sound. "
     "<audio>Dog,(2 5)</audio><audio>Speech,(0 10)</audio><visual>Dog,(0 10)</visual><visual>Car,(0 10)</visual>",
     {"Dog": [[2, 5]], "Speech": [[0, 10]]}, {"Car": [[0, 10]], "Dog": [[0, 10]]}),
    # Closing tags missing: each value ends at the line break.
    ("Events:\n<audio>Singing,(0 10)\n<visual>Singing,(3 10)\n", {"Singing": [[0, 10]]}, {"Singing": [[3, 10]]}),
    # "None" in words is an empty modality.
    ("The crowd cheers off camera. <audio>Cheering,(0 10)</audio> <visual>None</visual>", {"Cheering": [[0, 10]]}, {}),
    # Several classes in one tag, separated by ';' and 'and'; a comma name.
    ("<audio>Baby cry, infant cry,(0 3); Speech,(5 8) and Dog,(8 10)</audio><visual></visual>",
     {"Baby_cry_infant_cry": [[0, 3]], "Dog": [[8, 10]], "Speech": [[5, 8]]}, {}),
    # Other range spellings; one part of a class name ("Violin" for Violin_fiddle).
    ("<audio>Violin,(0s - 4s), [6, 10]</audio> <visual>Violin,(0 to 10)</visual>",
     {"Violin_fiddle": [[0, 4], [6, 10]]}, {"Violin_fiddle": [[0, 10]]}),
    # Out of the video and decimals: clipped to [0, 10], rounded half up.
    ("<audio>Helicopter,(-2 12)</audio><visual>Helicopter,(0.4 9.6)</visual>",
     {"Helicopter": [[0, 10]]}, {"Helicopter": [[0, 10]]}),
    # Misspellings within the difflib cutoff.
    ("The accordion plays from second 1 to 4. <audio>accordian,(1 4)</audio> <visual>Acordion,(1 4)</visual>",
     {"Accordion": [[1, 4]]}, {"Accordion": [[1, 4]]}),
    # Full-width punctuation.
    ("<audio>Dog\uff0c\uff080 3\uff09</audio><visual>Dog\uff0c\uff080 3\uff09</visual>", {"Dog": [[0, 3]]}, {"Dog": [[0, 3]]}),
    # Overlapping and touching ranges of one class merge into one run.
    ("<audio>Dog,(0 3)</audio><audio>Dog,(2 5)</audio><audio>Dog,(5 6)</audio><visual></visual>", {"Dog": [[0, 6]]}, {}),
    # Synonyms: "dog barking" is LLP's Dog, "crying" and "cheers" stem onto Baby_cry... and Cheering.
    ("<audio>dog barking,(1 2); baby crying,(3 4); cheers,(5 6)</audio>",
     {"Baby_cry_infant_cry": [[3, 4]], "Cheering": [[5, 6]], "Dog": [[1, 2]]}, {}),
    # Markdown around a name.
    ("<audio>**Frying (food)**,(2 6)</audio> <visual>`Frying_(food)`,(2 6)</visual>",
     {"Frying_(food)": [[2, 6]]}, {"Frying_(food)": [[2, 6]]}),
    # An echoed media placeholder is not a tag; the real tags after it count.
    ("<audio_start><audio><audio_end> I hear a telephone. <audio>Telephone bell ringing,(0 2)</audio>",
     {"Telephone_bell_ringing": [[0, 2]]}, {}),
])
def test_realistic_answers(text: str, audio: dict, visual: dict) -> None:
    assert parse(text) == {"audio": audio, "visual": visual}


@pytest.mark.parametrize("text, reason", [
    ("There is a dog barking and a man talking.", "no <audio>"),
    ("<audio_start><audio><audio_end>", "no <audio>"),
    ("<audio>Meowing,(0 3)</audio>", "unknown AVVP event class 'Meowing'"),
    ("<audio>Baby,(0 3)</audio>", "ambiguous AVVP event class 'Baby'"),  # crying or laughing?
    ("<audio>(0 3)</audio>", "without an event class"),
    ("<audio>Dog</audio>", "without a time range"),
    ("<audio>Dog,(0 3),Speech</audio>", "'Speech' without a time range"),
    ("<visual>Dog,(6 2)</visual>", "ends before it starts"),
    ("<audio>Dog,(0 3) and the visual event is a car</audio>", "without a time range"),
])
def test_failures_name_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(text)


def test_the_json_form_goes_through_the_same_name_matching() -> None:
    parsed = TASK.parsed_from_json({"audio": {"violin": [[0, 3]], "Dogs": [[2, 12]]}}, avvp_sample())
    assert parsed == {"audio": {"Dog": [[2, 10]], "Violin_fiddle": [[0, 3]]}, "visual": {}}
