"""MUSIC-AVQA parser on Crab-style answers: `<answer>...</answer>` mapped onto the 42 answers (docs/parsing.md)."""

from __future__ import annotations

import pytest

from avbench.errors import ParseError
from avbench.tasks.music_avqa import MusicAVQATask
from avbench.types import ModelOutput

from parser_cases import avqa_sample

TASK = MusicAVQATask()


def parse(text: str) -> str:
    return TASK.parse(ModelOutput(text), avqa_sample())["answer"]


@pytest.mark.parametrize("text, answer", [
    # Crab's README answer, verbatim (the reasoning names five other instruments).
    ("In the video, four men are playing musical instruments. The man on the left is playing the saxophone, the man "
     "in the middle is playing the double bass, the man on the right is playing the guitar, and the man in the back "
     "is playing the drums. At the beginning of the video, the man in the middle starts playing the double bass "
     "first, and then the other instruments start playing. So the instrument on the left of the first sounding "
     "instrument is the saxophone. So the answer is <answer> saxophone </answer>.", "saxophone"),
    # A yes followed by more words.
    ("A piano can be seen and heard. So the answer is <answer>Yes, there is a piano</answer>.", "yes"),
    # Digits are number words.
    ("Two instruments sound at the same time. <answer>2</answer>", "two"),
    # A number followed by a noun.
    ("The cello, the violin and the flute all sound. <answer>three instruments</answer></s>", "three"),
    # Missing closing tag at the end of the text, and before an end-of-sequence token.
    ("The louder instrument is on the left, so the answer is <answer>left", "left"),
    ("Both start together. <answer>simultaneously</s>", "simultaneously"),
    # Markdown, quotes, full-width brackets, the release's underscore spelling.
    ("<answer>**Acoustic Guitar**</answer>", "acoustic_guitar"),
    ("<answer>\u201cmiddle\u201d</answer>", "middle"),
    ("\uff1canswer\uff1eno\uff1c/answer\uff1e", "no"),
    # Restated answers: the last tag wins.
    ("First guess <answer>yes</answer>. Looking again, the trumpet never sounds. <answer>No.</answer>", "no"),
    # Above ten, in words or digits.
    ("Many people clap. <answer>more than 10</answer>", "more than ten"),
    ("<answer>12</answer>", "more than ten"),
    # An "answer:" prefix inside the tag.
    ("<answer>Answer: outdoor</answer>", "outdoor"),
    ("<answer>Nope</answer>", "no"),
    # Outside the 42: kept as normalised text, so it is scored as a wrong answer, not a parse failure.
    ("<answer>double bass</answer>", "double bass"),
    ("<answer>two or three</answer>", "two or three"),
])
def test_realistic_answers(text: str, answer: str) -> None:
    assert parse(text) == answer


def test_an_answer_outside_the_vocabulary_is_wrong_not_a_failure() -> None:
    sample = avqa_sample()  # the answer is "two"
    assert TASK.score(sample, TASK.parse(ModelOutput("<answer>two violins</answer>"), sample)).summary == {"correct": 1.0}
    assert TASK.score(sample, TASK.parse(ModelOutput("<answer>a couple</answer>"), sample)).summary == {"correct": 0.0}


@pytest.mark.parametrize("text, reason", [
    ("The answer is two.", "no <answer>"),
    ("", "no <answer>"),
    ("<answer>  </answer>", "empty"),
    ("<answer>...</answer>", "empty"),  # the prompt's template echoed
    ("<answer>" + "because " * 30 + "</answer>", "prose"),
    ("<answer>yes</answer> and finally <answer></answer>", "empty"),  # the last tag wins, even when empty
])
def test_failures_name_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(text)
