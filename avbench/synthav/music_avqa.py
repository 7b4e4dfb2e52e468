"""MUSIC-AVQA: instrument scenes and templated questions of all nine sub-types.

An instrument instance has a class, a rhythmic pattern (it pulses in the frames on its pattern's
strikes, sounding or not), a position (left / middle / right, or off screen) and, when it sounds,
an onset and a loudness level. The audio reveals each sounding instance's class, rhythm, onset and
loudness; the frames reveal each visible instance's class, rhythm and position. Rhythm is what ties
a sound to a visible instrument: matching them needs both modalities.

Each video is built around one Audio-Visual question: its scene is sampled so that the answer is
independent of what the audio alone shows and of what the frames alone show (given the question
text), e.g. "Is the <FL> sound coming from the <LR> instrument?" where the onset order of the two
sounds and the left/right layout are independent fair coins. Audio and Visual questions are then
asked about the same scene and are answerable from their own modality.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avbench.vocab import AVQA_ANSWERS, AVQA_INSTRUMENTS, AVQA_NUMBERS

from . import common, scene, sound
from .sizes import SPLITS, SizeSpec

#: A 10-instrument subset (fixed across seeds); classes are drawn uniformly, so every question's
#: statistics are symmetric under renaming the instruments.
INSTRUMENTS: tuple[str, ...] = (
    "accordion", "acoustic_guitar", "cello", "clarinet", "flute",
    "piano", "saxophone", "trumpet", "violin", "xylophone",
)
PATTERNS = sound.N_PATTERNS
FPS = 8  # one frame per pattern step, so every strike shows as a pulse
ONSET_STEP = 3  # the k-th instrument to come in starts at second 3k
SEGMENTS = common.CLIP_SECONDS
POSITIONS = {1: ("middle",), 2: ("left", "right"), 3: ("left", "middle", "right")}
AV_DESIGNS = ("Existential", "Counting", "Location", "Comparative", "Temporal")


@dataclass
class Instrument:
    cls: str
    pattern: int
    position: str | None  # None: off screen (heard only)
    sounding: bool = False
    onset: int = 0
    level: int = 2


@dataclass
class Question:
    modality: str
    kind: str
    template: str
    values: list[str]
    answer: str

    @property
    def subtype(self) -> str:
        return f"{self.modality}/{self.kind}"


@dataclass
class Video:
    instruments: list[Instrument]
    questions: list[Question] = field(default_factory=list)


# ---- what each modality reveals ------------------------------------------------------------------
def audio_view(instruments: list[Instrument]) -> list[list[Any]]:
    """Every sound: [class, pattern, onset, loudness level], in order of entry (then loudest first)."""
    tracks = [i for i in instruments if i.sounding]
    tracks.sort(key=lambda i: (i.onset, -i.level, i.cls, i.pattern))
    return [[i.cls, i.pattern, i.onset, i.level] for i in tracks]


def visual_view(instruments: list[Instrument]) -> list[list[Any]]:
    """Every visible instrument, left to right: [position, class, pattern] (pattern = its pulse)."""
    order = {"left": 0, "middle": 1, "right": 2}
    shown = sorted((i for i in instruments if i.position is not None), key=lambda i: order[i.position])
    return [[i.position, i.cls, i.pattern] for i in shown]


# ---- scenes built around one Audio-Visual question ------------------------------------------------
def _choice(rng: np.random.Generator, items: list[Any] | tuple[Any, ...]) -> Any:
    return items[int(rng.integers(len(items)))]


def _visible(rng: np.random.Generator, n: int, distinct_classes: bool) -> list[Instrument]:
    """n visible instruments at the n positions, distinct (class, pattern) pairs."""
    while True:
        classes = (rng.choice(len(INSTRUMENTS), size=n, replace=not distinct_classes)).tolist()
        patterns = rng.integers(0, PATTERNS, size=n).tolist()
        if len(set(zip(classes, patterns))) == n:
            return [Instrument(INSTRUMENTS[c], p, pos) for c, p, pos in zip(classes, patterns, POSITIONS[n])]


def _levels(rng: np.random.Generator, n: int) -> list[int]:
    return (rng.permutation(3)[:n] + 1).tolist()


def _existential(rng: np.random.Generator) -> Video:
    # yes: the one sound is a visible instrument; no: a (class, rhythm) not on screen. Given the
    # layout, the sound is uniform over all pairs either way; given the sound, so is the layout.
    shown = _visible(rng, 2, distinct_classes=False)
    instruments = list(shown)
    if rng.random() < 0.5:
        sounder = _choice(rng, shown)
    else:
        taken = {(i.cls, i.pattern) for i in shown}
        free = [(c, p) for c in INSTRUMENTS for p in range(PATTERNS) if (c, p) not in taken]
        cls, pattern = _choice(rng, free)
        sounder = Instrument(cls, pattern, None)
        instruments.append(sounder)
    sounder.sounding = True
    answer = "yes" if sounder.position is not None else "no"
    return Video(instruments, [Question("Audio-Visual", "Existential", "Is this sound from the instrument in the video?", [], answer)])


def _counting(rng: np.random.Generator) -> Video:
    # Two visible <Object>s (rhythm set Sv), two heard (rhythm set Sa), |Sa & Sv| = answer, uniform
    # in 0..2: Sv and Sa are each uniform 2-subsets of the rhythms whatever the answer.
    cls = _choice(rng, INSTRUMENTS)
    matched = int(rng.integers(0, 3))
    seen = rng.choice(PATTERNS, size=2, replace=False).tolist()
    unseen = [p for p in range(PATTERNS) if p not in seen]
    heard = rng.choice(seen, size=matched, replace=False).tolist() + rng.choice(unseen, size=2 - matched, replace=False).tolist()
    instruments = [Instrument(cls, p, pos) for p, pos in zip(seen, POSITIONS[2])]
    instruments += [Instrument(cls, p, None) for p in heard if p not in seen]
    for instrument, level in zip([i for p in heard for i in instruments if i.pattern == p], _levels(rng, 2)):
        instrument.sounding, instrument.level = True, level
    question = Question("Audio-Visual", "Counting", "How many sounding <Object> in the video?", [cls], AVQA_NUMBERS[matched])
    return Video(instruments, [question])


def _enter_in_order(rng: np.random.Generator, instruments: list[Instrument]) -> list[Instrument]:
    """All sound, entering one by one in a random order, at distinct random loudness levels."""
    order = [instruments[i] for i in rng.permutation(len(instruments))]
    for k, (instrument, level) in enumerate(zip(order, _levels(rng, len(order)))):
        instrument.sounding, instrument.onset, instrument.level = True, k * ONSET_STEP, level
    return order


def _location(rng: np.random.Generator) -> Video:
    # Which position sounds first is a coin independent of both the sounds and the layout.
    shown = _visible(rng, 2, distinct_classes=True)
    order = _enter_in_order(rng, shown)
    fl, lr = _choice(rng, ("first", "last")), _choice(rng, ("left", "right"))
    target = order[0] if fl == "first" else order[-1]
    answer = "yes" if target.position == lr else "no"
    return Video(shown, [Question("Audio-Visual", "Location", "Is the <FL> sound coming from the <LR> instrument?", [fl, lr], answer)])


def _comparative(rng: np.random.Generator) -> Video:
    # Which position gets the louder sound is a coin independent of both the sounds and the layout.
    shown = _visible(rng, 2, distinct_classes=True)
    for instrument, level in zip(shown, _levels(rng, 2)):
        instrument.sounding, instrument.level = True, level
    first, second = rng.permutation(["left", "right"]).tolist()
    level = {i.position: i.level for i in shown}
    answer = "yes" if level[first] > level[second] else "no"
    return Video(shown, [Question("Audio-Visual", "Comparative",
                                  "Is the instrument on the <LR> louder than the instrument on the <LR>?",
                                  [first, second], answer)])


def _temporal(rng: np.random.Generator) -> Video:
    # The entry order is a random permutation independent of the layout: the position of the
    # first (last) instrument is uniform over the positions given either modality alone.
    fl = _choice(rng, ("first", "last"))
    if rng.random() < 0.5:
        shown = _visible(rng, int(rng.integers(2, 4)), distinct_classes=True)
        order = _enter_in_order(rng, shown)
        target = order[0] if fl == "first" else order[-1]
        question = Question("Audio-Visual", "Temporal", "Where is the <FL> sounding instrument?", [fl], target.position)
    else:
        # two of the same instrument: only the rhythm tells which sound belongs to which player
        cls = _choice(rng, INSTRUMENTS)
        shown = [Instrument(cls, int(p), pos) for p, pos in zip(rng.choice(PATTERNS, size=2, replace=False), POSITIONS[2])]
        order = _enter_in_order(rng, shown)
        target = order[0] if fl == "first" else order[-1]
        question = Question("Audio-Visual", "Temporal", "Which <Object> makes the sound <FL>?", [cls, fl], target.position)
    return Video(shown, [question])


_DESIGNS = {"Existential": _existential, "Counting": _counting, "Location": _location,
            "Comparative": _comparative, "Temporal": _temporal}


# ---- single-modality questions about a scene ---------------------------------------------------
def _audio_question(rng: np.random.Generator, instruments: list[Instrument], kind: str) -> Question:
    sounders = [i for i in instruments if i.sounding]
    heard_classes = sorted({i.cls for i in sounders})
    unique = [i for i in sounders if sum(j.cls == i.cls for j in sounders) == 1]
    if kind == "Comparative" and len(unique) >= 2:
        a, b = (unique[k] for k in rng.choice(len(unique), size=2, replace=False))
        if a.pattern != b.pattern and rng.random() < 0.5:
            return Question("Audio", "Comparative", "Is the <Object> more rhythmic than the <Object>?",
                            [a.cls, b.cls], "yes" if a.pattern > b.pattern else "no")
        return Question("Audio", "Comparative", "Is the <Object> louder than the <Object>?",
                        [a.cls, b.cls], "yes" if a.level > b.level else "no")
    if rng.random() < 0.5:
        return Question("Audio", "Counting", "How many musical instruments were heard throughout the video?",
                        [], AVQA_NUMBERS[len(sounders)])
    present = rng.random() < 0.5
    pool = heard_classes if present else [c for c in INSTRUMENTS if c not in heard_classes]
    return Question("Audio", "Counting", "Is there a <Object> sound?", [_choice(rng, pool)], "yes" if present else "no")


def _visual_question(rng: np.random.Generator, instruments: list[Instrument], kind: str) -> Question:
    shown = visual_view(instruments)
    classes = [c for _, c, _ in shown]
    if kind == "Location":
        sides = []
        for k, cls in enumerate(classes):
            if classes.count(cls) == 1:
                if k > 0:
                    sides.append(("left", cls, classes[k - 1]))
                if k + 1 < len(classes):
                    sides.append(("right", cls, classes[k + 1]))
        if sides and rng.random() < 0.5:
            side, cls, neighbour = _choice(rng, sides)
            return Question("Visual", "Location", "What is the instrument on the <LR> of <Object>?", [side, cls], neighbour)
        end = _choice(rng, ("leftest", "rightest"))
        return Question("Visual", "Location", "What kind of instrument is the <LRer> instrument?", [end],
                        classes[0] if end == "leftest" else classes[-1])
    pick = int(rng.integers(3))
    if pick == 0:
        return Question("Visual", "Counting", "How many types of musical instruments appeared in the entire video?",
                        [], AVQA_NUMBERS[len(set(classes))])
    absent = [c for c in INSTRUMENTS if c not in classes]
    if pick == 1:
        cls = _choice(rng, classes) if rng.random() < 2 / 3 else _choice(rng, absent)
        return Question("Visual", "Counting", "How many <Object> are in the entire video?", [cls], AVQA_NUMBERS[classes.count(cls)])
    present = rng.random() < 0.5
    cls = _choice(rng, classes if present else absent)
    return Question("Visual", "Counting", "Is there a <Object> in the entire video?", [cls], "yes" if present else "no")


def sample_video(rng: np.random.Generator, index: int, fourth_question: float) -> Video:
    """Video `index` of a split: its AV sub-type cycles with the index so every split has all five."""
    video = _DESIGNS[AV_DESIGNS[index % len(AV_DESIGNS)]](rng)
    audio_kind = "Comparative" if (index // len(AV_DESIGNS)) % 2 == 0 else "Counting"
    visual_kind = "Location" if index % 2 else "Counting"
    video.questions.append(_audio_question(rng, video.instruments, audio_kind))
    video.questions.append(_visual_question(rng, video.instruments, visual_kind))
    if rng.random() < fourth_question:
        if rng.random() < 0.5:
            other = "Counting" if video.questions[1].kind == "Comparative" else "Comparative"
            video.questions.append(_audio_question(rng, video.instruments, other))
        else:
            other = "Counting" if visual_kind == "Location" else "Location"
            video.questions.append(_visual_question(rng, video.instruments, other))
    for question in video.questions:
        assert question.answer in AVQA_ANSWERS, question
        assert question.template.count("<") == len(question.values), question
    return video


# ---- rendering and files ---------------------------------------------------------------------------
_COLUMNS = {"left": 0, "middle": 1, "right": 2}


def _scene_objects(rng: np.random.Generator, instruments: list[Instrument]) -> list[scene.SceneObject]:
    side = common.CLIP_SIDE
    column = side // 3
    objects = []
    for instrument in instruments:
        box = None
        if instrument.position is not None:
            size = int(rng.integers(28, 37))
            x0 = _COLUMNS[instrument.position] * column + int(rng.integers(1, column - size))
            y0 = int(rng.integers(16, side - 16 - size))
            box = (x0, y0, x0 + size, y0 + size)
        gains = [sound.LEVEL_GAIN[instrument.level] if instrument.sounding and s >= instrument.onset else 0.0
                 for s in range(SEGMENTS)]
        objects.append(scene.SceneObject(AVQA_INSTRUMENTS.index(instrument.cls), instrument.cls,
                                         [box] * SEGMENTS, gains, instrument.pattern))
    return objects


def write(root: Path, seed: int, spec: SizeSpec) -> dict[str, Any]:
    out = common.clip_folders(root, "music_avqa")
    ids = common.rng_for(seed, "music_avqa", "ids")
    number = int(ids.integers(1, 50))
    question_id = int(ids.integers(1, 20))
    videos: dict[str, Any] = {}
    questions: dict[str, Any] = {}
    for split, count in zip(SPLITS, spec.music_avqa):
        rows = []
        for index in range(count):
            rng = common.rng_for(seed, "music_avqa", split, index)
            video = sample_video(rng, index, spec.avqa_fourth_question)
            video_id = f"{number:08d}"
            number += int(ids.integers(1, 8))
            objects = _scene_objects(rng, video.instruments)
            common.write_clip(out / "videos" / f"{video_id}.mp4", out / "audios" / f"{video_id}.wav",
                              objects, rng, FPS, pulse=True)
            videos[video_id] = {
                "split": split,
                "instruments": [
                    {"class": i.cls, "pattern": i.pattern, "position": i.position, "sounding": i.sounding,
                     "onset": i.onset if i.sounding else None, "level": i.level if i.sounding else None,
                     "box": list(o.boxes[0]) if o.boxes[0] is not None else None}
                    for i, o in zip(video.instruments, objects)
                ],
                "segments": scene.segment_truth(objects, SEGMENTS),
            }
            for question in video.questions:
                rows.append({
                    "video_id": video_id,
                    "question_id": question_id,
                    "type": json.dumps([question.modality, question.kind]),
                    "question_content": question.template,
                    "templ_values": json.dumps(question.values),
                    "question_deleted": 0,
                    "anser": question.answer,
                })
                questions[str(question_id)] = {
                    "video_id": video_id, "split": split, "type": [question.modality, question.kind],
                    "template": question.template, "templ_values": question.values, "answer": question.answer,
                    "audio_view": audio_view(video.instruments), "visual_view": visual_view(video.instruments),
                }
                question_id += int(ids.integers(1, 6))
        # the release's json: a list, two-space indent, ASCII escapes, no final newline
        (out / f"avqa-{split}.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return {"instruments": list(INSTRUMENTS), "videos": videos, "questions": questions}
