"""Parsing helpers shared by the tasks (avbench.parsing); the per-task parsers are tested in tests/parsers/."""

from __future__ import annotations

import numpy as np
import pytest

from avbench.errors import ParseError
from avbench.parsing import (
    ClassMatcher,
    RepeatedIds,
    as_2d_map,
    class_key,
    class_lookup,
    clean_value,
    find_tags,
    last_tag,
    map_list,
    normalize_text,
    numbers_in,
    whole_second_range,
)


def test_class_names_match_ignoring_case_and_punctuation() -> None:
    lookup = class_lookup(["Violin, fiddle", "Frying_(food)"])
    assert lookup[class_key("violin fiddle")] == "Violin, fiddle"
    assert lookup[class_key("FRYING (FOOD)")] == "Frying_(food)"


# ---- time ranges ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "start, end, expected",
    [(0, 8, (0, 8)), ("2.5", "3.5", (3, 4)), (-1, 12, (0, 10)), (4, 4, (4, 4)), (0.49, 9.5, (0, 10))],
)
def test_whole_second_ranges_round_halves_up_and_clip(start, end, expected) -> None:
    assert whole_second_range(start, end, 10) == expected


@pytest.mark.parametrize("start, end, reason", [
    (6, 3, "ends before it starts"), (float("nan"), 3, "not finite"), (0, float("inf"), "not finite"),
    ("soon", 3, "not two numbers"), (None, 3, "not two numbers"),
])
def test_unusable_ranges_are_parse_errors(start, end, reason) -> None:
    with pytest.raises(ParseError, match=reason):
        whole_second_range(start, end, 10)


# ---- text, tags and numbers ------------------------------------------------------------------------------------
def test_text_is_normalised_to_ascii_forms() -> None:
    assert normalize_text("\uff1canswer\uff1e\uff12\uff1c/answer\uff1e") == "<answer>2</answer>"
    assert normalize_text("(\u22121\u200b, 5)") == "(-1, 5)"


@pytest.mark.parametrize("raw, value", [
    ("  **Bark**  ", "Bark"), ('"yes."', "yes"), ("`two`", "two"), ("\u201cleft\u201d", "left"),
    ("'**Frying (food)**'.", "Frying (food)"), (", yes;", "yes"), ("...", ""),
])
def test_values_lose_markdown_quotes_and_punctuation(raw, value) -> None:
    assert clean_value(raw) == value


def tags(text: str, *names: str) -> list[tuple[str, str, bool]]:
    return [(t.name, t.body, t.closed) for t in find_tags(text, names or ("answer",))]


@pytest.mark.parametrize("text, expected", [
    ("<answer>yes</answer>", [("answer", "yes", True)]),
    ("<ANSWER> yes </Answer>", [("answer", " yes ", True)]),
    ("<answer>\nyes\n</answer>", [("answer", "\nyes\n", True)]),  # a closed value may span lines
    ("<answer>yes</ answer>", [("answer", "yes", True)]),
    ("<answer>yes<\\answer>", [("answer", "yes", True)]),  # a backslash for the slash
    # Missing closing tag: the value ends at the end of the text, a line break, or the next tag.
    ("so <answer>yes", [("answer", "yes", False)]),
    ("<answer>\n\n yes \nmore text", [("answer", "yes ", False)]),
    ("<answer>yes</s>", [("answer", "yes", False)]),
    ("<answer>yes<answer>no</answer>", [("answer", "yes", False), ("answer", "no", True)]),
    # An unclosed tag without a value is not a tag (an echoed placeholder).
    ("<answer><answer_end>", []),
    ("<answer>\n<answer>no</answer>", [("answer", "no", True)]),
    # A closed tag with an empty value is kept: it says "nothing".
    ("<answer></answer>", [("answer", "", True)]),
    # Other tags and lookalikes: a value never holds another tag; `x < 5` is not a tag.
    ("<answer>a <b>c</b></answer>", [("answer", "a ", False)]),
    ("if x < 5 and y > 3 then <answer>yes</answer>", [("answer", "yes", True)]),
    ("<answers>yes</answers> <answer_x>no</answer_x>", []),
])
def test_tags_with_and_without_closing_tags(text, expected) -> None:
    assert tags(text) == expected


def test_aliases_of_one_tag_close_each_other() -> None:
    assert tags("<audio_event>Dog,(0 1)</audio> <audio>Cat,(1 2)</audio_event>", "audio", "audio_event") == [
        ("audio_event", "Dog,(0 1)", True), ("audio", "Cat,(1 2)", True)]


def test_the_last_tag_wins_and_no_tag_names_the_form() -> None:
    assert last_tag("<answer>yes</answer> ... <answer>no</answer>", ("answer",), "<answer>").body == "no"
    with pytest.raises(ParseError, match="no <answer>...</answer> in the output"):
        last_tag("yes", ("answer",), "<answer>...</answer>")


@pytest.mark.parametrize("text, numbers", [
    ("0,8", [0, 8]), ("[0 - 8)", [0, 8]), ("2-8", [2, 8]), ("0s to 8s", [0, 8]), ("the 2nd to the 8th", [2, 8]),
    ("(-1 5)", [-1, 5]), ("0,-2", [0, -2]), ("2.5 to 10.25", [2.5, 10.25]), ("(x1,y1)(x2,y2)", []),
    ("x1=20, y1=60", [20, 60]), ("an mp4 of 224x224", [224]), ("8.", [8]), ("1e9", [1]),
])
def test_numbers_are_those_not_part_of_a_word(text, numbers) -> None:
    assert numbers_in(text) == numbers


# ---- class names ---------------------------------------------------------------------------------------------
VOCAB = ClassMatcher(
    ["Violin, fiddle", "Male speech, man speaking", "Female speech, woman speaking", "Accordion", "Cat", "Car",
     "Bus", "Frying (food)", "Baby cry, infant cry", "Baby laughter", "Bark"],
    {"Bark": ("Dog",)}, what="test class")


@pytest.mark.parametrize("text, name", [
    ("Violin, fiddle", "Violin, fiddle"),  # 1. same letters and digits
    ("VIOLIN_FIDDLE", "Violin, fiddle"),
    ("dog", "Bark"),  # an alias
    ("Cats", "Cat"),  # 2. plural
    ("buses", "Bus"),
    ("the sound of a cat", "Cat"),  # filler words dropped
    ("fiddle", "Violin, fiddle"),  # 3. words found in one class only
    ("man speaking", "Male speech, man speaking"),
    ("baby crying", "Baby cry, infant cry"),  # -ing stemmed on both sides
    ("dogs barking", "Bark"),  # alias words count as the class's words ... with the class's own
    ("Accordian", "Accordion"),  # 4. misspelling (ratio 0.889)
    ("Acordion", "Accordion"),
    ("**Frying food**", "Frying (food)"),
])
def test_class_names_map_onto_the_vocabulary(text, name) -> None:
    assert VOCAB.match(text) == name


@pytest.mark.parametrize("text, reason", [
    ("speech", "ambiguous test class 'speech': could be Male speech, man speaking, Female speech, woman speaking"),
    ("baby", "ambiguous"),
    ("Cart", "unknown test class 'Cart'"),  # short names match exactly only: cat, car, cart are one letter apart
    ("Piano", "unknown"),
    ("", "empty test class name"),
    ("**", "empty"),
    ("violin and cat", "unknown"),  # two classes are not one
    ("a very long sentence about a violin " * 10, "unknown test class 'a very long sentence about a violin a very long sentence abo..."),
])
def test_unknown_or_ambiguous_names_fail(text, reason) -> None:
    with pytest.raises(ParseError, match=reason.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        VOCAB.match(text)


def test_an_ambiguous_misspelling_fails() -> None:
    matcher = ClassMatcher(["Guitars", "Guitarx"])
    with pytest.raises(ParseError, match="ambiguous class 'Guitarz'"):
        matcher.match("Guitarz")


def test_aliases_must_name_vocabulary_entries() -> None:
    with pytest.raises(ValueError, match="not in the vocabulary"):
        ClassMatcher(["Cat"], {"Dog": ("Puppy",)})


# ---- maps ------------------------------------------------------------------------------------------------------
def test_map_lists() -> None:
    maps = map_list(np.zeros((3, 4, 4)))
    assert len(maps) == 3 and maps[0].shape == (4, 4)
    for bad, reason in ((None, "no masks"), (5, "got int"), ("mask", "got str"), ({"a": 1}, "got dict")):
        with pytest.raises(ParseError, match=reason):
            map_list(bad)


def test_maps_are_2d_with_singleton_axes_dropped() -> None:
    assert as_2d_map(np.ones((1, 3, 4)), 0).shape == (3, 4)
    assert as_2d_map(np.ones((3, 4, 1)), 0).shape == (3, 4)
    assert as_2d_map([[1, 0], [0, 1]], 0).shape == (2, 2)
    for bad, reason in ((np.ones((2, 3, 4)), "shape \\(2, 3, 4\\)"), (np.ones(4), "2-D"), (np.ones((0, 4)), "non-empty"),
                        (None, "map 3 is not a numeric array"), ([[1, 2], [3]], "map 3 is not an array")):
        with pytest.raises(ParseError, match=reason):
            as_2d_map(bad, 3)


def test_repeated_ids_get_a_counter() -> None:
    unique = RepeatedIds()
    assert [unique(i) for i in ["a", "b", "a", "a"]] == ["a", "b", "a#2", "a#3"]
