"""How many clips each SynthAV size holds, per data set and split."""

from __future__ import annotations

from dataclasses import dataclass

SPLITS = ("train", "val", "test")
REF_AVS_SPLITS = ("train", "val", "test_s", "test_u", "test_n")


@dataclass(frozen=True)
class SizeSpec:
    ave: tuple[int, int, int]  # videos per split (train, val, test)
    avvp: tuple[int, int, int]
    music_avqa: tuple[int, int, int]  # videos per split; each gets 3 or 4 questions
    avqa_fourth_question: float  # probability that a video gets a fourth question
    v1s: tuple[int, int, int]
    v1m: tuple[int, int, int]
    v2: tuple[int, int, int]
    ref_avs: tuple[int, int, int, int, int]  # clips per split (train, val, test_s, test_u, test_n)


SIZE_SPECS: dict[str, SizeSpec] = {
    # As small as possible while every task and split has data: five AVQA videos per split carry the
    # five Audio-Visual sub-types; 22 v2 test videos (3 sounding classes each) complete the 70-class
    # AVSS coverage together with the v1 test videos.
    "tiny": SizeSpec((2, 2, 2), (2, 2, 2), (5, 5, 5), 0.0, (2, 1, 2), (2, 1, 2), (2, 1, 22), (2, 1, 1, 1, 1)),
    "small": SizeSpec((60, 20, 40), (60, 20, 40), (30, 30, 30), 0.5, (30, 10, 20), (20, 8, 12), (20, 10, 36), (9, 8, 8, 8, 8)),
    "medium": SizeSpec((240, 60, 120), (240, 60, 120), (120, 60, 90), 0.5, (120, 30, 60), (80, 24, 36), (80, 30, 60), (40, 16, 16, 16, 16)),
}
