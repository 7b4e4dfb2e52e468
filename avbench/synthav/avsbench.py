"""AVSBench-semantic: v1s (S4, one sounding object), v1m (MS3, 1-2 of 2-3 sounding, changing per
frame) and v2 (10 s, 2-4 objects). Silent objects of other classes make the audio necessary.

Masks paint each SOUNDING object in its class colour (PASCAL-VOC bit palette, class id = index in
AVSS_CLASSES); silent objects and background stay black. The test videos together sound every one of
the 70 foreground classes, so a perfect AVSS prediction scores 100 over all 71 classes.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from avbench.masks import avsbench_palette
from avbench.vocab import AVSS_CLASSES

from . import common, look, media, scene
from .sizes import SPLITS, SizeSpec

SUBSETS = ("v1s", "v1m", "v2")
FRAMES = {"v1s": 5, "v1m": 5, "v2": 10}
#: (min, max) objects per video and (min, max) sounding objects among them.
OBJECTS = {"v1s": (1, 3), "v1m": (2, 3), "v2": (2, 4)}
SOUNDING = {"v1s": (1, 1), "v1m": (1, 2), "v2": (1, 3)}
GAIN = 0.25
SIDE = common.AVSBENCH_SIDE


def _key(class_id: int) -> int:
    """Look/sound key of an AVSS class id (1..70): 0..69 give 70 distinct shape x colour looks."""
    return class_id - 1


def sample_video(rng: np.random.Generator, subset: str, must_sound: list[int]) -> list[scene.SceneObject]:
    """Objects of one video; `must_sound` class ids (from the coverage queue) are among the sounding."""
    frames = FRAMES[subset]
    lo, hi = SOUNDING[subset]
    n_sounding = max(len(must_sound), int(rng.integers(lo, hi + 1)))
    n_objects = int(rng.integers(max(n_sounding, OBJECTS[subset][0]), max(n_sounding, OBJECTS[subset][1]) + 1))
    others = [c for c in range(1, len(AVSS_CLASSES)) if c not in must_sound]
    classes = list(must_sound) + rng.choice(others, size=n_objects - len(must_sound), replace=False).tolist()
    cells = rng.permutation(4)[:n_objects].tolist()
    objects = []
    for k, (class_id, cell) in enumerate(zip(classes, cells)):
        sounding = k < n_sounding
        if not sounding:
            heard = [False] * frames
        elif subset == "v1s":
            heard = [True] * frames
        else:
            # MS3 / v2: the sounding set changes between frames; each sounder is heard at least once
            heard = (rng.random(frames) < 0.6).tolist()
            heard[int(rng.integers(frames))] = True
        boxes = common.drifting_boxes(rng, cell, 2, SIDE, (48, 96), frames)
        objects.append(scene.SceneObject(_key(class_id), AVSS_CLASSES[class_id], boxes, [GAIN if h else 0.0 for h in heard]))
    return objects


def label_mask(objects: list[scene.SceneObject], frame: int, palette: np.ndarray) -> np.ndarray:
    """RGB palette mask of one frame: sounding objects in their class colour, the rest black."""
    mask = np.zeros((SIDE, SIDE, 3), dtype=np.uint8)
    for o in objects:
        if o.audible(frame) and o.visible(frame):
            mask[look.object_mask(look.Placement(o.key, o.boxes[frame]), SIDE, SIDE)] = palette[o.key + 1]
    return mask


def write(root: Path, seed: int, spec: SizeSpec) -> dict[str, Any]:
    out = root / "avsbench"
    out.mkdir(parents=True)
    palette = avsbench_palette(len(AVSS_CLASSES))
    ids = common.rng_for(seed, "avsbench", "ids")
    taken: set[str] = set()
    coverage = (common.rng_for(seed, "avsbench", "coverage").permutation(len(AVSS_CLASSES) - 1) + 1).tolist()
    rows: list[list[Any]] = []
    videos: dict[str, Any] = {}
    counts = {"v1s": spec.v1s, "v1m": spec.v1m, "v2": spec.v2}
    for subset in SUBSETS:
        frames = FRAMES[subset]
        for split, count in zip(SPLITS, counts[subset]):
            for index, vid in enumerate(media.youtube_like_ids(ids, count, taken)):
                rng = common.rng_for(seed, "avsbench", subset, split, index)
                must: list[int] = []
                if split == "test":
                    capacity = SOUNDING[subset][1]
                    must, coverage = coverage[:capacity], coverage[capacity:]
                objects = sample_video(rng, subset, must)
                start = int(rng.integers(0, 300))
                if subset == "v1m":
                    uid = f"{vid}_{int(rng.integers(1, 10))}"
                else:
                    uid = f"{vid}_{start * 1000}_{(start + frames) * 1000}"
                folder = out / subset / uid
                (folder / "frames").mkdir(parents=True)
                (folder / "labels_rgb").mkdir()
                base = look.background(rng, SIDE, SIDE)
                for i in range(frames):
                    shown = [look.Placement(o.key, o.boxes[i]) for o in objects if o.visible(i)]
                    media.write_jpeg(folder / "frames" / f"{i}.jpg", look.draw(base, shown))
                    # as released: S4 training videos are annotated on their first frame only
                    if subset != "v1s" or split != "train" or i == 0:
                        media.write_png(folder / "labels_rgb" / f"{i}.png", label_mask(objects, i, palette))
                media.write_wav(folder / "audio.wav", scene.render_audio(objects, frames, rng))
                sounding = sorted({o.name for o in objects if any(o.audible(i) for i in range(frames))})
                rows.append([vid, uid, start // 60, start % 60, "_".join(sounding), split, subset])
                videos[uid] = {
                    "vid": vid, "subset": subset, "split": split,
                    "frames": [
                        {"visible": [{"class": o.name, "class_id": o.key + 1, "box": list(o.boxes[i])} for o in objects],
                         "sounding": sorted({o.name for o in objects if o.audible(i)})}
                        for i in range(frames)
                    ],
                }
    if coverage:
        raise ValueError(f"too few AVSBench test videos to sound all 70 classes ({len(coverage)} left)")
    with (out / "metadata.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["vid", "uid", "s_min", "s_sec", "a_obj", "split", "label"])
        writer.writerows(rows)
    return {"videos": videos}
