"""Parsing helpers shared by the tasks."""

from __future__ import annotations

import pytest

from avbench.errors import ParseError
from avbench.parsing import RepeatedIds, class_key, class_lookup, whole_second_range


def test_class_names_match_ignoring_case_and_punctuation() -> None:
    lookup = class_lookup(["Violin, fiddle", "Frying_(food)"])
    assert lookup[class_key("violin fiddle")] == "Violin, fiddle"
    assert lookup[class_key("FRYING (FOOD)")] == "Frying_(food)"


@pytest.mark.parametrize(
    "start, end, expected",
    [(0, 8, (0, 8)), ("2.5", "3.5", (3, 4)), (-1, 12, (0, 10)), (4, 4, (4, 4)), (0.49, 9.5, (0, 10))],
)
def test_whole_second_ranges_round_halves_up_and_clip(start, end, expected) -> None:
    assert whole_second_range(start, end, 10) == expected


def test_a_range_that_ends_before_it_starts_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="ends before it starts"):
        whole_second_range(6, 3, 10)


def test_repeated_ids_get_a_counter() -> None:
    unique = RepeatedIds()
    assert [unique(i) for i in ["a", "b", "a", "a"]] == ["a", "b", "a#2", "a#3"]
