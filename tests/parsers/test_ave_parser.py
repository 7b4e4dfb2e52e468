"""AVE parser on Crab-style answers: reasoning first, then `<event>` and `<range>` (docs/parsing.md)."""

from __future__ import annotations

import pytest

from avbench.errors import ParseError
from avbench.tasks.ave import AVETask
from avbench.types import ModelOutput

from parser_cases import ave_sample

TASK = AVETask()


def parse(text: str) -> tuple[str, int, int]:
    parsed = TASK.parse(ModelOutput(text), ave_sample())
    return parsed["event"], parsed["start"], parsed["end"]


@pytest.mark.parametrize("text, expected", [
    # Crab's README answer, verbatim.
    ("A man is giving a speech from a podium in a classroom. The man speaks from the beginning of the video until "
     "the 8th second. So the audible and visible event in the video is <event> Male speech, man speaking </event>, "
     "and the time range is <range> 0,8 </range>.", ("Male speech, man speaking", 0, 8)),
    # The reasoning's own numbers (2nd, 6th) and an end-of-sequence token do not matter; "Dog" is AVE's Bark.
    ("The sound of a dog barking can be heard from the 2nd second to the 6th second, and the dog is visible at the "
     "same time. So the event is <event>Dog</event>, and the time range is <range>2,6</range>.</s>", ("Bark", 2, 6)),
    # Both closing tags missing: a value ends at the line break, or at the end of the text.
    ("A violin is played from the 7th second to the end. So the event is <event>Violin\n"
     "and the time range is <range>7,10", ("Violin, fiddle", 7, 10)),
    # The reasoning names other classes; only the tag counts.
    ("At first it sounds like a Ukulele or a Banjo, but the body is large and the strings are steel. "
     "<event>Acoustic guitar</event> <range>0,10</range>", ("Acoustic guitar", 0, 10)),
    # A corrected answer: the last tag of each kind wins.
    ("It is <event>Cat</event> at <range>1,2</range>. Wait, the animal is actually a goat bleating: "
     "<event>Goat</event> <range>3,7</range>", ("Goat", 3, 7)),
    # Markdown around the values.
    ("**Event:** <event>**Helicopter**</event>, **Range:** <range>`1, 9`</range>", ("Helicopter", 1, 9)),
    # Full-width punctuation and digits (NFKC).
    ("\u4e8b\u4ef6\u662f<event>Church bell</event>\uff0c\u65f6\u95f4\u662f<range>\uff10\uff0c\uff15</range>\u3002",
     ("Church bell", 0, 5)),
    # Out of the video: clipped to [0, 10].
    ("The horn sounds throughout. <event>Train horn</event> <range>-1, 12</range>", ("Train horn", 0, 10)),
    # Decimal seconds round half up (2.5 -> 3, 10.5 -> 11 -> clipped to 10).
    ("<event>Clock</event> <range>2.5s to 10.5s</range>", ("Clock", 3, 10)),
    # A misspelt class and a spaced dash.
    ("An accordion player performs on the street. <event>Accordian</event> from <range>0 - 4</range>",
     ("Accordion", 0, 4)),
    # Lower case, a missing bracket in the name, ordinals in the range.
    ("<event>frying food</event> <range>from the 4th to the 9th second</range>", ("Frying (food)", 4, 9)),
    # Quotes, and a half-open interval written as such.
    ('<event>"Toilet flush"</event> <range>[5, 8)</range>', ("Toilet flush", 5, 8)),
    # One part of a comma name, plural.
    ("Planes fly over the field. <event>airplanes</event><range>0,10</range>", ("Fixed-wing aircraft, airplane", 0, 10)),
    # Tags inside a code block count like any others.
    ("```\n<event>Banjo</event>\n<range>1,3</range>\n```", ("Banjo", 1, 3)),
    # An empty range (start == end) is a prediction of all background.
    ("No event is both audible and visible... <event>Bus</event> <range>4,4</range>", ("Bus", 4, 4)),
])
def test_realistic_answers(text: str, expected: tuple[str, int, int]) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text, reason", [
    ("The video shows a dog barking from the 2nd to the 6th second.", "no <event>"),
    ("", "no <event>"),
    ("<event>Bark</event> somewhere in the middle", "no <range>"),
    ("<event>Speech</event><range>0,3</range>", "ambiguous AVE event 'Speech'"),  # male or female?
    ("<event>Piano</event><range>0,3</range>", "unknown AVE event 'Piano'"),
    ("<event>Bark</event><range>8,3</range>", "ends before it starts"),  # never swapped
    ("<event>Bark</event><range>00:02 - 00:06</range>", "two numbers"),
    ("<event>Bark</event><range>two to six</range>", "two numbers"),
    ("<event><event></event></event><range>0,1</range>", "empty AVE event"),
    ("<event>event name</event> <range>start,end</range>", "two numbers"),  # the prompt's template echoed
    ("<event>Bark</event> <range>1,2</range> then <event>Sitar</event>", "unknown AVE event 'Sitar'"),  # last tag wins
])
def test_failures_name_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(text)


def test_the_json_form_goes_through_the_same_name_matching() -> None:
    assert TASK.parsed_from_json({"event": "dog", "start": -2, "end": 4.5}, ave_sample()) == \
        {"event": "Bark", "start": 0, "end": 5}
