"""ARIG parser on Crab-style answers: `<obj>(x1,y1)(x2,y2)</obj>` on the 224 x 224 image (docs/parsing.md)."""

from __future__ import annotations

import pytest

from avbench.errors import ParseError
from avbench.tasks.arig import ARIGTask
from avbench.types import ModelOutput

from parser_cases import arig_sample

TASK = ARIGTask()


def parse(text: str) -> list[list[float]]:
    return TASK.parse(ModelOutput(text), arig_sample())["boxes"]


@pytest.mark.parametrize("text, boxes", [
    # Crab's training answer form.
    ("The sounding object is guitar. Its coordinates are <obj>(20,60)(39,99)</obj>.", [[20, 60, 39, 99]]),
    # Crab's other form, a comma between the points, and spaces.
    ("The sounding object is dog. <obj>( 20 , 60 ),( 39 , 99 )</obj></s>", [[20, 60, 39, 99]]),
    # Outside the image: clipped to pixel indices 0..223.
    ("The piano fills the frame. <obj>(-5,10)(230,300)</obj>", [[0, 10, 223, 223]]),
    # Missing closing tag at the end of the text.
    ("The sounding object is a man. Its coordinates are <obj>(12, 30)(100, 180)", [[12, 30, 100, 180]]),
    # A flat list of four numbers.
    ("<obj>[12, 30, 100, 180]</obj>", [[12, 30, 100, 180]]),
    # Full-width brackets and commas.
    ("<obj>\uff0812\uff0c30\uff09\uff08100\uff0c180\uff09</obj>", [[12, 30, 100, 180]]),
    # The reasoning's numbers (80 pixels, 224x224) are outside the tag.
    ("The guitar is about 80 pixels wide, on the left of the 224x224 image. <obj>(5,40)(85,200)</obj>",
     [[5, 40, 85, 200]]),
    # Decimal coordinates are kept.
    ("<obj>(10.5,20.25)(100,150)</obj>", [[10.5, 20.25, 100, 150]]),
    # Named coordinates: x1, y2, ... are names, not numbers.
    ("<obj>x1=20, y1=60, x2=39, y2=99</obj>", [[20, 60, 39, 99]]),
    # Two boxes: both kept (the metric takes the best).
    ("Two speakers: <obj>(0,0)(5,5)</obj> and <OBJ>(20,60)(39,99)</OBJ>.", [[0, 0, 5, 5], [20, 60, 39, 99]]),
    # A reversed box is dropped; the valid one remains.
    ("<obj>(100,100)(50,50)</obj> sorry, <obj>(50,50)(100,100)</obj>", [[50, 50, 100, 100]]),
    # Markdown around the tag's content.
    ("**Coordinates:** <obj>`(1,2)(3,4)`</obj>", [[1, 2, 3, 4]]),
])
def test_realistic_answers(text: str, boxes: list[list[float]]) -> None:
    assert parse(text) == boxes


@pytest.mark.parametrize("text, reason", [
    ("The guitar is on the left side of the image.", "no <obj>"),
    ("(20,60)(39,99)", "no <obj>"),
    ("<obj>(x1,y1)(x2,y2)</obj>", "holds 0 numbers"),  # the prompt's template echoed
    ("<obj>(20,60)</obj>", "holds 2 numbers"),
    ("<obj>(1,2)(3,4)(5,6)</obj>", "holds 6 numbers"),
    ("<obj>(39,99)(20,60)</obj>", "second corner"),  # reversed: never swapped
    ("<obj>(1000,1000)(0,0)</obj>", "second corner"),  # Crab's no-object sentinel
    ("<obj>(300,300)(400,400)</obj>", "outside the 224 x 224 image"),
    ("<obj>(-50,10)(-1,20)</obj>", "outside"),
])
def test_failures_name_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(text)


def test_the_json_form_is_checked_like_the_text() -> None:
    sample = arig_sample()
    assert TASK.parsed_from_json({"boxes": [[-3, 5, 250, 100]]}, sample) == {"boxes": [[0, 5, 223, 100]]}
    with pytest.raises(ParseError, match="second corner"):
        TASK.parsed_from_json({"boxes": [[50, 50, 10, 10]]}, sample)


def test_clipping_gives_the_iou_of_the_pixels_inside_the_image() -> None:
    # Target [20, 60, 39, 99]: 20 x 40 pixels. A box from (-100, 60) to (39, 99) covers the same pixels inside
    # the image as (0, 60)-(39, 99): 40 x 40, so IoU = 800 / 1600.
    sample = arig_sample()
    parsed = TASK.parse(ModelOutput("<obj>(-100,60)(39,99)</obj>"), sample)
    assert TASK.score(sample, parsed).summary == {"iou": 0.5}
