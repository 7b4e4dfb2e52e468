"""ARIG: audio-referred image grounding on AVSBench S4 frames (Crab's benchmark).

One sample is one annotated frame of a `v1s` video, id `<uid>/<frame index>`. The model sees the frame
and the video's audio and answers with `<obj>(x1,y1)(x2,y2)</obj>`.

Ground-truth box: the bounding box of the WHOLE foreground of the frame's mask (every non-black pixel,
whatever its colour), after resizing the mask to 224 x 224 with nearest neighbour. Coordinates are
integer pixel indices on that 224 x 224 image, inclusive: (x1, y1) is the left-most column and
top-most row holding foreground, (x2, y2) the right-most column and bottom-most row. This follows
Crab, whose loader resizes every ARIG image to 224 x 224 and whose targets are integer pixel
coordinates taken as min / max over foreground pixels. Frames whose mask has no foreground (at
224 x 224) have no box and are not samples.

Parsing (`parse_boxes`, docs/parsing.md): every `<obj>` tag holding four numbers is a box (a missing
closing tag ends it at the next tag or line break); coordinates are clipped to 0..223; a box with its
corners reversed or lying entirely outside the image is dropped; no box left is a parse error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from avbench.errors import DataError, ParseError
from avbench.masks import read_binary_mask
from avbench.metrics.boxes import auc, best_iou, ciou
from avbench.parsing import find_tags, normalize_text, numbers_in
from avbench.metrics.boxes import scores_of_sums as box_scores_of_sums, unit_values as box_unit_values
from avbench.task import Task
from avbench.types import ModelOutput, Sample, ScoredSample, UnitSums

from ._avsbench import metadata_path, read_avsbench

#: Side of the square image the boxes refer to (Crab resizes ARIG frames to this).
IMAGE_SIZE = 224


_MEDIA_BLOCKS = (
    "This is an image:\n<image_start><image><image_end>\n"
    "This is an audio:\n<audio_start><audio><audio_end>\n"
)
_INSTRUCTION = (
    "Please recognize the category of the object that makes the sound, and then output its location "
    f"as a bounding box in pixel coordinates of the {IMAGE_SIZE}x{IMAGE_SIZE} image, "
    "in the form <obj>(x1,y1)(x2,y2)</obj>, where (x1,y1) is the top left corner and (x2,y2) the bottom right corner."
)


def mask_box(mask: np.ndarray, size: int = IMAGE_SIZE) -> list[int] | None:
    """Bounding box `[x1, y1, x2, y2]` (inclusive pixel indices) of a mask's foreground at `size` x `size`.

    `mask` is a 2-D boolean foreground map of any size; it is resized with nearest neighbour first.
    None when no foreground remains.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (size, size):
        resized = Image.fromarray(mask.astype(np.uint8) * 255, mode="L").resize((size, size), Image.Resampling.NEAREST)
        mask = np.array(resized) > 0
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return [int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])]


def format_box(box: Sequence[float]) -> str:
    x1, y1, x2, y2 = (_number_text(v) for v in box)
    return f"<obj>({x1},{y1})({x2},{y2})</obj>"


def parse_boxes(text: str) -> list[list[float]]:
    """Every valid box of the `<obj>` tags in `text`; raises ParseError when there is none.

    A tag holds a box when it holds exactly four numbers, in Crab's form `(x1,y1)(x2,y2)`, its other
    training form `(x1,y1),(x2,y2)`, or any other (`[x1, y1, x2, y2]`, `x1=20, y1=60, ...`); `x1` or
    `y2` written as placeholders hold no number. Each box then goes through `checked_box`. Every valid
    box is kept (the metric scores the best one, docs/metrics.md).
    """
    tags = find_tags(normalize_text(text or ""), ("obj",))
    if not tags:
        raise ParseError("no <obj>(x1,y1)(x2,y2)</obj> box in the output")
    boxes, problems = [], []
    for tag in tags:
        values = numbers_in(tag.body)
        if len(values) != 4:
            problems.append(f"<obj> holds {len(values)} numbers, not the four of (x1,y1)(x2,y2)")
            continue
        try:
            boxes.append(checked_box(values))
        except ParseError as exc:
            problems.append(str(exc))
    if not boxes:
        raise ParseError(problems[-1])
    return boxes


def checked_box(values: Sequence[float]) -> list[float]:
    """A box `[x1, y1, x2, y2]` clipped to the image's pixel indices 0..223; ParseError when unusable.

    A box whose second corner lies left of or above its first is not a box (the prompt asks for the
    top-left corner first; Crab's own no-object sentinel is such a box, x1 = 1000); a box entirely
    outside the image covers no pixel. Otherwise coordinates are clipped to [0, 223], so the box is
    the pixels it covers inside the image (what the inclusive-pixel IoU measures).
    """
    x1, y1, x2, y2 = (float(v) for v in values)
    corners = f"({x1:g},{y1:g})({x2:g},{y2:g})"
    if x2 < x1 or y2 < y1:
        raise ParseError(f"box {corners}: the second corner must be right of and below the first")
    last = IMAGE_SIZE - 1
    if x2 < 0 or y2 < 0 or x1 > last or y1 > last:
        raise ParseError(f"box {corners} lies outside the {IMAGE_SIZE} x {IMAGE_SIZE} image")
    return [min(max(v, 0.0), float(last)) for v in (x1, y1, x2, y2)]


class ARIGTask(Task):
    name = "arig"
    family = "spatial"
    dataset_dir = "avsbench"
    primary_metric = "ciou"
    table_metrics = ("ciou", "auc")
    fraction_metrics = frozenset({"auc"})
    output_kind = "text"
    description = "ARIG audio-referred grounding on S4 frames: box of the sounding object; cIoU (%), AUC (fraction)"

    # ---- data -------------------------------------------------------------------------------
    def load(self, data_root: Path, split: str) -> list[Sample]:
        samples: list[Sample] = []
        for video in read_avsbench(data_root, split, ("v1s",)):
            if not any(video.mask(i).is_file() for i in range(video.n_frames)):
                raise DataError("video without any mask", video.mask(0))
            for index in range(video.n_frames):
                mask_path = video.mask(index)
                if not mask_path.is_file():
                    # The official train v1s videos annotate frame 0 only; elsewhere every frame has a mask.
                    if split == "train":
                        continue
                    raise DataError(f"mask of frame {index} missing (only train videos may lack masks)", mask_path)
                box = mask_box(read_binary_mask(mask_path))
                if box is None:
                    continue
                samples.append(
                    Sample(
                        id=f"{video.uid}/{index}",
                        task=self.name,
                        split=split,
                        media={"image": str(video.frame(index)), "audio": str(video.audio)},
                        inputs={"frame_index": index, "n_frames": video.n_frames},
                        target={"box": box},
                        meta={"uid": video.uid, "frame": index, "a_obj": video.a_obj},
                    )
                )
        return samples

    def annotation_files(self, data_root: Path, split: str) -> list[Path]:
        return [metadata_path(data_root)]

    # ---- prompting and parsing ----------------------------------------------------------------
    def build_prompt(self, sample: Sample) -> str:
        return _MEDIA_BLOCKS + _INSTRUCTION

    def parse(self, output: ModelOutput, sample: Sample) -> dict[str, list[list[float]]]:
        return {"boxes": parse_boxes(output.text)}

    def parsed_from_json(self, obj: Any, sample: Sample) -> dict[str, list[list[float]]]:
        boxes = obj.get("boxes") if isinstance(obj, dict) else None
        if not isinstance(boxes, list) or not boxes:
            raise ParseError("an ARIG prediction is {'boxes': [[x1, y1, x2, y2], ...]} with at least one box")
        for box in boxes:
            if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
                raise ParseError(f"a box must be four numbers [x1, y1, x2, y2], got {box!r}")
        return {"boxes": [checked_box(box) for box in boxes]}

    # ---- scoring --------------------------------------------------------------------------------
    def score(self, sample: Sample, parsed: Any | None) -> ScoredSample:
        boxes = parsed["boxes"] if parsed is not None else []
        iou = best_iou(boxes, sample.target["box"])
        return ScoredSample(summary={"iou": iou}, stats=iou)

    def aggregate(self, samples: Sequence[Sample], stats: Sequence[Any]) -> dict[str, float]:
        ious = np.asarray(stats, dtype=np.float64)
        return {"ciou": 100.0 * ciou(ious), "auc": auc(ious)}

    def unit_sums(self, samples: Sequence[Sample], stats: Sequence[Any]) -> UnitSums:
        return UnitSums(box_unit_values(np.asarray(stats, dtype=np.float64)), box_scores_of_sums)

    # ---- baseline support -----------------------------------------------------------------------
    def reference_output(self, sample: Sample) -> ModelOutput:
        return ModelOutput(text=f"The sounding object is {sample.meta.get('a_obj', 'the object')}. "
                                f"Its coordinates are {format_box(sample.target['box'])}.")

    def random_output(self, sample: Sample, rng: np.random.Generator) -> ModelOutput:
        # Each axis: two independent uniform pixel indices, sorted, so every valid box can come out.
        xs = np.sort(rng.integers(0, IMAGE_SIZE, size=2))
        ys = np.sort(rng.integers(0, IMAGE_SIZE, size=2))
        box = [int(xs[0]), int(ys[0]), int(xs[1]), int(ys[1])]
        return ModelOutput(text=f"Its coordinates are {format_box(box)}.")

    def fit_prior(self, train_samples: Sequence[Sample]) -> dict[str, list[int]]:
        """The mean train box, rounded to pixel indices (the whole image when there are no samples)."""
        if not train_samples:
            return {"box": [0, 0, IMAGE_SIZE - 1, IMAGE_SIZE - 1]}
        mean = np.mean([s.target["box"] for s in train_samples], axis=0)
        return {"box": [int(v) for v in np.rint(mean)]}

    def prior_output(self, prior: dict[str, list[int]], sample: Sample) -> ModelOutput:
        return ModelOutput(text=f"Its coordinates are {format_box(prior['box'])}.")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
