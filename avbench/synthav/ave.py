"""AVE: one event per video, audible AND visible on [start, end); distractors elsewhere.

Background segments hold, at random, nothing; the event object silent; its sound without the
object; or another class seen or heard (never both in one segment). So neither the audio alone
nor the frames alone localise the event: only segments where the class is both seen and heard do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from avbench.vocab import AVE_EVENTS

from . import common, media, scene
from .sizes import SPLITS, SizeSpec

#: A 10-class subset of the 28 AVE events (fixed, so the label space does not change with the seed).
CLASSES: tuple[str, ...] = (
    "Church bell", "Bark", "Helicopter", "Violin, fiddle", "Flute",
    "Motorcycle", "Acoustic guitar", "Clock", "Cat", "Accordion",
)
FPS = 4
SEGMENTS = common.CLIP_SECONDS
GAIN = 0.3
#: Background segment contents: (event seen, event heard, other seen, other heard).
_BACKGROUND_KINDS = (
    (False, False, False, False),
    (True, False, False, False),
    (False, True, False, False),
    (False, False, True, False),
    (False, False, False, True),
    (True, False, False, True),
    (False, True, True, False),
)


def sample_video(rng: np.random.Generator) -> tuple[str, int, int, list[scene.SceneObject]]:
    label = CLASSES[int(rng.integers(len(CLASSES)))]
    other = CLASSES[int(rng.choice([i for i, c in enumerate(CLASSES) if c != label]))]
    start = int(rng.integers(0, SEGMENTS))
    end = int(rng.integers(start + 1, SEGMENTS + 1))
    cells = rng.permutation(4)[:2].tolist()
    event_boxes = common.drifting_boxes(rng, cells[0], 2, common.CLIP_SIDE, (30, 44), SEGMENTS)
    other_boxes = common.drifting_boxes(rng, cells[1], 2, common.CLIP_SIDE, (30, 44), SEGMENTS)
    event_seen, event_heard, other_seen, other_heard = ([False] * SEGMENTS for _ in range(4))
    for s in range(SEGMENTS):
        if start <= s < end:
            event_seen[s] = event_heard[s] = True
            # inside the event another class may be seen or heard, never both
            extra = int(rng.integers(0, 3))
            other_seen[s], other_heard[s] = extra == 1, extra == 2
        else:
            kind = _BACKGROUND_KINDS[int(rng.integers(len(_BACKGROUND_KINDS)))]
            event_seen[s], event_heard[s], other_seen[s], other_heard[s] = kind
    objects = [
        scene.SceneObject(AVE_EVENTS.index(label), label,
                          [b if v else None for b, v in zip(event_boxes, event_seen)],
                          [GAIN if h else 0.0 for h in event_heard]),
        scene.SceneObject(AVE_EVENTS.index(other), other,
                          [b if v else None for b, v in zip(other_boxes, other_seen)],
                          [GAIN if h else 0.0 for h in other_heard]),
    ]
    return label, start, end, objects


def write(root: Path, seed: int, spec: SizeSpec) -> dict[str, Any]:
    out = common.clip_folders(root, "ave")
    ids = common.rng_for(seed, "ave", "ids")
    taken: set[str] = set()
    videos: list[dict[str, Any]] = []
    for split, count in zip(SPLITS, spec.ave):
        for index, vid in enumerate(media.youtube_like_ids(ids, count, taken)):
            rng = common.rng_for(seed, "ave", split, index)
            label, start, end, objects = sample_video(rng)
            common.write_clip(out / "videos" / f"{vid}.mp4", out / "audios" / f"{vid}.wav", objects, rng, FPS, pulse=False)
            videos.append({"id": vid, "split": split, "label": label, "start": start, "end": end,
                           "segments": scene.segment_truth(objects, SEGMENTS)})
    # The release groups Annotations.txt by category; the split files index its rows.
    rows = sorted(range(len(videos)), key=lambda i: (AVE_EVENTS.index(videos[i]["label"]), i))
    with (out / "Annotations.txt").open("w", encoding="utf-8", newline="\n") as handle:
        for i in rows:
            v = videos[i]
            handle.write(f"{v['label']}&{v['id']}&good&{v['start']}&{v['end']}\n")
    row_of = {i: r for r, i in enumerate(rows)}
    order_rng = common.rng_for(seed, "ave", "order")
    for split in SPLITS:
        order = np.array([row_of[i] for i, v in enumerate(videos) if v["split"] == split], dtype=np.int64)
        with h5py.File(out / f"{split}_order.h5", "w") as handle:
            handle.create_dataset("order", data=order_rng.permutation(order))
    return {"classes": list(CLASSES), "videos": {v["id"]: {k: v[k] for k in v if k != "id"} for v in videos}}
