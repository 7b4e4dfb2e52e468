"""Ref-AVS: 10 s clips with 2-3 objects and expressions that pick one object by audio-visual cues.

Expressions ("The sounding object.", "The object making the loudest sound.", "The silent red
object.", ...) are kept only when exactly one object fits, and every one needs the audio: which
objects sound, how loud, when they start, how fast their rhythm. test_u clips use only classes
that never occur in train; test_n clips have only silent objects (the sound comes from off screen),
so a sound-referring expression refers to nothing and its masks are empty. Every fourth train clip is
such a null clip too (uid `null_...`, all-black masks), so a model can learn to answer with an empty
mask; the release's own loader still marks only test_n samples as null.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable

import numpy as np

from avbench.vocab import AVSS_CLASSES

from . import common, look, media, scene, sound
from .sizes import REF_AVS_SPLITS, SizeSpec

FRAMES = 10
SIDE = common.AVSBENCH_SIDE
ONSETS = (0, 2, 4, 6)
N_UNSEEN = 12
EXPRESSIONS_PER_CLIP = 3
#: Train clips 1, 1 + NULL_TRAIN_PERIOD, ... are null clips (test_n holds nothing else; even tiny gets one).
NULL_TRAIN_PERIOD = 4
NULL_EXPRESSIONS = (
    "The sounding object.",
    "The object making the loudest sound.",
    "The first object to make a sound.",
    "The object making the fastest rhythm.",
)


def _unique_best(objects: list[scene.SceneObject], candidates: list[int], score: Callable[[scene.SceneObject], float]) -> int | None:
    if len(candidates) < 2:
        return None
    values = [score(objects[i]) for i in candidates]
    best = max(values)
    return candidates[values.index(best)] if values.count(best) == 1 else None


def expressions(objects: list[scene.SceneObject]) -> list[tuple[str, int]]:
    """Every expression of the repertoire that fits exactly one object: (text, object index)."""
    sounding = [i for i, o in enumerate(objects) if o.extra["sounding"]]
    silent = [i for i, o in enumerate(objects) if not o.extra["sounding"]]
    found: list[tuple[str, int]] = []
    if len(sounding) == 1:
        found.append(("The sounding object.", sounding[0]))
    if len(silent) == 1 and sounding:
        found.append(("The silent object.", silent[0]))
    for text, score in (
        ("The object making the loudest sound.", lambda o: o.extra["level"]),
        ("The first object to make a sound.", lambda o: -o.extra["onset"]),
        ("The last object to make a sound.", lambda o: o.extra["onset"]),
        ("The object making the fastest rhythm.", lambda o: o.pattern),
        # grid column, so "left" is never a matter of a few pixels
        ("The sounding object on the left.", lambda o: -int(o.boxes[0][0] + o.boxes[0][2] >= SIDE)),
    ):
        best = _unique_best(objects, sounding, score)
        if best is not None:
            found.append((text, best))
    for i in silent:
        colour = look.colour_of(objects[i].key)
        same = [j for j, o in enumerate(objects) if look.colour_of(o.key) == colour]
        # the colour alone does not pick it: a sounding object shares it
        if sum(j in silent for j in same) == 1 and any(j in sounding for j in same):
            found.append((f"The silent {colour} object.", i))
    return found


def sample_clip(rng: np.random.Generator, pool: list[int], null: bool) -> list[scene.SceneObject]:
    n = int(rng.integers(2, 4))
    first = int(rng.choice(pool))
    classes = [first]
    same_colour = [c for c in pool if c != first and look.colour_of(c - 1) == look.colour_of(first - 1)]
    while len(classes) < n:
        # often a second object of the same colour, so colour alone is not enough
        options = same_colour if same_colour and len(classes) == 1 and rng.random() < 0.5 else [c for c in pool if c not in classes]
        choice = int(rng.choice([c for c in options if c not in classes]))
        classes.append(choice)
    cells = rng.permutation(4)[:n].tolist()
    if null:
        heard = [False] * n
    else:
        heard = [bool(v) for v in rng.random(n) < 0.6]
        if not any(heard):
            heard[int(rng.integers(n))] = True
    objects = []
    for class_id, cell, sounding in zip(classes, cells, heard):
        onset, level = int(rng.choice(ONSETS)), int(rng.integers(1, 4))
        boxes = common.drifting_boxes(rng, cell, 2, SIDE, (56, 100), FRAMES)
        gains = [sound.LEVEL_GAIN[level] if sounding and s >= onset else 0.0 for s in range(FRAMES)]
        objects.append(scene.SceneObject(class_id - 1, AVSS_CLASSES[class_id], boxes, gains,
                                         int(rng.integers(0, sound.N_PATTERNS)),
                                         extra={"sounding": sounding, "onset": onset, "level": level, "class_id": class_id}))
    if null:
        # the sound comes from something off screen
        offscreen = int(rng.choice([c for c in pool if c not in classes]))
        objects.append(scene.SceneObject(offscreen - 1, AVSS_CLASSES[offscreen], [None] * FRAMES,
                                         [sound.LEVEL_GAIN[2]] * FRAMES, int(rng.integers(0, sound.N_PATTERNS)),
                                         extra={"sounding": True, "onset": 0, "level": 2, "class_id": offscreen, "offscreen": True}))
    return objects


def write(root: Path, seed: int, spec: SizeSpec) -> dict[str, Any]:
    out = root / "ref_avs"
    out.mkdir(parents=True)
    ids = common.rng_for(seed, "ref_avs", "ids")
    taken: set[str] = set()
    order = (common.rng_for(seed, "ref_avs", "classes").permutation(len(AVSS_CLASSES) - 1) + 1).tolist()
    unseen, seen = sorted(order[:N_UNSEEN]), sorted(order[N_UNSEEN:])
    rows: list[list[Any]] = []
    clips: dict[str, Any] = {}
    expressions_truth: dict[str, Any] = {}
    for split, count in zip(REF_AVS_SPLITS, spec.ref_avs):
        made = 0
        attempt = 0
        while made < count:
            rng = common.rng_for(seed, "ref_avs", split, attempt)
            attempt += 1
            null = split == "test_n" or (split == "train" and made % NULL_TRAIN_PERIOD == 1)
            objects = sample_clip(rng, unseen if split == "test_u" else seen, null)
            candidates = [] if null else expressions(objects)
            if not null and not candidates:
                continue
            yt = media.youtube_like_ids(ids, 1, taken)[0]
            start = int(rng.integers(0, 300))
            vid = f"{yt}_{start * 1000}_{(start + FRAMES) * 1000}"
            if null:
                picks = [(NULL_EXPRESSIONS[k], None) for k in sorted(rng.choice(len(NULL_EXPRESSIONS), size=EXPRESSIONS_PER_CLIP, replace=False))]
            else:
                chosen = sorted(rng.choice(len(candidates), size=min(EXPRESSIONS_PER_CLIP, len(candidates)), replace=False))
                picks = [candidates[k] for k in chosen]
            _write_media(out, vid, objects, picks, rng)
            per_class: dict[str, int] = {}
            for n, (text, fid) in enumerate(picks, start=1):
                if fid is None:
                    uid, fid_value = f"null_c-{vid}_null_{n}", 0
                else:
                    name = objects[fid].name
                    per_class[name] = per_class.get(name, 0) + 1
                    uid, fid_value = f"{vid}_{name}_{per_class[name]}", fid
                rows.append([vid, uid, split, fid_value, text])
                expressions_truth[uid] = {"vid": vid, "split": split, "fid": fid_value, "exp": text,
                                          "referent": fid, "class": None if fid is None else objects[fid].name}
            clips[vid] = {
                "split": split,
                "objects": [
                    {"fid": i, "class": o.name, "class_id": o.extra["class_id"], "colour": look.colour_of(o.key),
                     "shape": look.shape_of(o.key), "sounding": o.extra["sounding"], "onset": o.extra["onset"],
                     "level": o.extra["level"], "pattern": o.pattern, "offscreen": o.extra.get("offscreen", False),
                     "boxes": [list(b) if b is not None else None for b in o.boxes]}
                    for i, o in enumerate(objects)
                ],
                "segments": scene.segment_truth(objects, FRAMES),
            }
            made += 1
    with (out / "metadata.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)  # the release uses CRLF line ends, csv's default
        writer.writerow(["vid", "uid", "split", "fid", "exp"])
        writer.writerows(rows)
    return {"seen_classes": [AVSS_CLASSES[c] for c in seen], "unseen_classes": [AVSS_CLASSES[c] for c in unseen],
            "clips": clips, "expressions": expressions_truth}


def _write_media(out: Path, vid: str, objects: list[scene.SceneObject], picks: list[tuple[str, int | None]],
                 rng: np.random.Generator) -> None:
    folder = out / "media" / vid
    (folder / "frames").mkdir(parents=True)
    base = look.background(rng, SIDE, SIDE)
    for k in range(FRAMES):
        shown = [look.Placement(o.key, o.boxes[k]) for o in objects if o.visible(k)]
        media.write_jpeg(folder / "frames" / f"{k}.jpg", look.draw(base, shown))
    media.write_wav(folder / "audio.wav", scene.render_audio(objects, FRAMES, rng))
    for fid in sorted({0 if fid is None else fid for _, fid in picks}):
        referent = None if any(f is None for _, f in picks) else objects[fid]
        mask_dir = out / "gt_mask" / vid / f"fid_{fid}"
        mask_dir.mkdir(parents=True)
        for k in range(FRAMES):
            mask = np.zeros((SIDE, SIDE), dtype=np.uint8)
            if referent is not None:
                mask[look.object_mask(look.Placement(referent.key, referent.boxes[k]), SIDE, SIDE)] = 255
            media.write_png(mask_dir / f"{k:05d}.png", mask)
