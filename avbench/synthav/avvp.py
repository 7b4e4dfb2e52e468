"""AVVP (LLP): per video 1-3 classes, each with its own audio segments and visual segments.

Each class is audio-only, visual-only or audio-visual; some events have holes (two runs). Dense
rows (val + test) are the maximal runs of each modality, as in AVVP_eval_audio/visual.csv.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from avbench.vocab import LLP_CLASSES

from . import common, media, scene
from .sizes import SPLITS, SizeSpec

#: A 10-class subset of the 25 LLP classes (fixed across seeds).
CLASSES: tuple[str, ...] = (
    "Accordion", "Acoustic_guitar", "Basketball_bounce", "Cat", "Chainsaw",
    "Dog", "Helicopter", "Lawn_mower", "Speech", "Violin_fiddle",
)
FPS = 4
SEGMENTS = common.CLIP_SECONDS
GAIN = 0.25
KINDS = ("audio", "visual", "audio-visual")


def sample_video(rng: np.random.Generator) -> list[scene.SceneObject]:
    n = int(rng.integers(1, 4))
    names = [CLASSES[i] for i in rng.choice(len(CLASSES), size=n, replace=False)]
    cells = rng.permutation(4)[:n].tolist()
    objects = []
    for name, cell in zip(names, cells):
        kind = KINDS[int(rng.integers(len(KINDS)))]
        heard = common.segment_runs(rng, SEGMENTS, rng.random() < 0.3) if kind != "visual" else [False] * SEGMENTS
        seen = common.segment_runs(rng, SEGMENTS, rng.random() < 0.3) if kind != "audio" else [False] * SEGMENTS
        if kind == "audio-visual" and not any(h and s for h, s in zip(heard, seen)):
            # an audio-visual event needs a segment both seen and heard
            overlap = int(rng.choice([i for i, h in enumerate(heard) if h]))
            seen[overlap] = True
        boxes = common.drifting_boxes(rng, cell, 2, common.CLIP_SIDE, (28, 44), SEGMENTS)
        objects.append(scene.SceneObject(LLP_CLASSES.index(name), name,
                                         [b if s else None for b, s in zip(boxes, seen)],
                                         [GAIN if h else 0.0 for h in heard], extra={"kind": kind}))
    return objects


def events(objects: list[scene.SceneObject]) -> dict[str, list[list[Any]]]:
    """Maximal runs per class and modality: {"audio": [[class, onset, offset], ...], "visual": [...]}."""
    out: dict[str, list[list[Any]]] = {"audio": [], "visual": []}
    for o in objects:
        for onset, offset in scene.runs([o.audible(s) for s in range(SEGMENTS)]):
            out["audio"].append([o.name, onset, offset])
        for onset, offset in scene.runs([o.visible(s) for s in range(SEGMENTS)]):
            out["visual"].append([o.name, onset, offset])
    return out


def write(root: Path, seed: int, spec: SizeSpec) -> dict[str, Any]:
    out = common.clip_folders(root, "avvp")
    ids = common.rng_for(seed, "avvp", "ids")
    taken: set[str] = set()
    videos: dict[str, dict[str, Any]] = {}
    label_files = {"train": "AVVP_train.csv", "val": "AVVP_val_pd.csv", "test": "AVVP_test_pd.csv"}
    dense: dict[str, list[str]] = {"audio": [], "visual": []}
    for split, count in zip(SPLITS, spec.avvp):
        lines = ["filename\tevent_labels"]
        for index, yt in enumerate(media.youtube_like_ids(ids, count, taken)):
            rng = common.rng_for(seed, "avvp", split, index)
            objects = sample_video(rng)
            start = 10 * int(rng.integers(0, 30))
            filename = f"{yt}_{start}_{start + 10}"
            common.write_clip(out / "videos" / f"{filename}.mp4", out / "audios" / f"{filename}.wav",
                              objects, rng, FPS, pulse=False)
            lines.append(f"{filename}\t{','.join(o.name for o in objects)}")
            video_events = events(objects)
            if split != "train":
                for modality in ("audio", "visual"):
                    dense[modality].extend(f"{filename}\t{on}\t{off}\t{c}" for c, on, off in video_events[modality])
            videos[filename] = {"split": split, "labels": [o.name for o in objects],
                                "kinds": {o.name: o.extra["kind"] for o in objects},
                                "events": video_events, "segments": scene.segment_truth(objects, SEGMENTS)}
        (out / label_files[split]).write_text("\n".join(lines) + "\n", encoding="utf-8")
    for modality in ("audio", "visual"):
        header = "filename\tonset\toffset\tevent_labels"
        (out / f"AVVP_eval_{modality}.csv").write_text("\n".join([header, *dense[modality]]) + "\n", encoding="utf-8")
    return {"classes": list(CLASSES), "videos": videos}
