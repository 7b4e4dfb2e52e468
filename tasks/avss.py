"""AVSS: audio-visual semantic segmentation on AVSBench-semantic (71 classes, background = 0).

One sample is one video of the split from all three subsets (`v1s`, `v1m`, `v2`), scored on 10
frames as the official loader (OpenNLPLab/AVSBench `avs_scripts/avss/color_dataloader.py`) does:
v2 videos have 10 real frames; v1 videos have 5 real frames followed by 5 padded frames whose ground
truth is all background, and the official test scores those padded frames too. A model answers for
the real frames (padded frames then count as predicted background, which is what a model shown no
image should say) or for all 10 frames. Each answer is an integer class-id map or (71, H, W) class
scores, read by arg-max as the official evaluation does (`_class_id_map`, docs/parsing.md).

Evaluation is at 224 x 224 like the official test loader: ground-truth RGB palette masks are resized
with nearest neighbour and mapped to class ids; predicted maps of another size are resized with
nearest neighbour. Train `v1s` videos annotate frame 0 only (official release); their other frames
have no ground truth and are not scored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from avbench.errors import DataError, ParseError, UnknownNameError
from avbench.masks import avsbench_palette, decode_map, encode_binary, encode_map, rgb_to_class_ids
from avbench.metrics.avss import CLASS_SELECTIONS, NUM_CLASSES, AVSSStats, avss_scores, avss_scores_of_sums, avss_stats, present_class_mean
from avbench.metrics.avss import unit_values as avss_unit_values
from avbench.parsing import as_2d_map, map_list
from avbench.task import Task, file_hash
from avbench.types import ModelOutput, Sample, ScoredSample, UnitSums

from ._avsbench import SUBSETS, metadata_path, read_avsbench

#: Frames per scored video: v1 videos are padded to this many (official).
FRAMES_PER_VIDEO = 10
#: Side of the square maps scored, as the official test loader resizes to.
EVAL_SIZE = 224

_PALETTE = avsbench_palette(NUM_CLASSES)

_MEDIA_BLOCKS = (
    "This is a video:\n<video_start><video><video_end>\n"
    "This is an audio:\n<audio_start><audio><audio_end>\n"
)
_INSTRUCTION = (
    "Please recognize the categories of the objects making sound in the video, and then segment out "
    "the objects that make the sound in every frame of the video."
)


def read_class_map(path: str | Path, size: int = EVAL_SIZE) -> np.ndarray:
    """An RGB palette mask as a (size, size) int64 class-id map, read as the official test loader does.

    The loader converts to RGB, resizes with nearest neighbour, then maps colours; a colour outside
    the palette becomes background.
    """
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB").resize((size, size), Image.Resampling.NEAREST)
    except FileNotFoundError:
        raise DataError("mask file not found", path) from None
    except OSError as exc:
        raise DataError(f"cannot decode mask image ({exc})", path) from None
    return rgb_to_class_ids(np.array(rgb), _PALETTE)


def resize_labels(labels: np.ndarray, size: int = EVAL_SIZE) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape == (size, size):
        return labels.astype(np.int64)
    resized = Image.fromarray(labels.astype(np.uint8), mode="L").resize((size, size), Image.Resampling.NEAREST)
    return np.array(resized).astype(np.int64)


class AVSSTask(Task):
    name = "avss"
    family = "pixel"
    dataset_dir = "avsbench"
    primary_metric = "miou"
    table_metrics = ("miou", "f_score")
    output_kind = "mask"
    max_new_tokens = 100
    description = "AVSS semantic segmentation, 71 classes: per-class accumulated mIoU and F-score, mean over all classes (%)"

    def __init__(self, classes: str = "all", **options: Any):
        if classes not in CLASS_SELECTIONS:
            raise UnknownNameError("AVSS class selection", classes, list(CLASS_SELECTIONS))
        super().__init__(**options)
        self.classes = classes

    def variants(self) -> dict[str, str]:
        # "no_bg" is the official noBg number, which drops the LAST class (woman), not the background.
        return {"classes": self.classes}

    # ---- data -------------------------------------------------------------------------------
    def load(self, data_root: Path, split: str) -> list[Sample]:
        samples: list[Sample] = []
        for video in read_avsbench(data_root, split, SUBSETS):
            n_real = video.n_frames
            masks: list[str | None] = []
            for index in range(n_real):
                path = video.mask(index)
                if path.is_file():
                    masks.append(str(path))
                elif split == "train":
                    masks.append(None)  # official train v1s videos annotate frame 0 only
                else:
                    raise DataError(f"mask of frame {index} missing (only train videos may lack masks)", path)
            if all(m is None for m in masks):
                raise DataError("train video without any mask", video.mask(0))
            n_padded = FRAMES_PER_VIDEO - n_real
            samples.append(
                Sample(
                    id=video.uid,
                    task=self.name,
                    split=split,
                    media={"frames": [str(video.frame(i)) for i in range(n_real)], "audio": str(video.audio)},
                    target={"masks": masks},
                    meta={
                        "subset": video.subset,
                        "a_obj": video.a_obj,
                        "n_real_frames": n_real,
                        "n_padded_frames": n_padded,
                        "annotated_frames": [i for i, m in enumerate(masks) if m is not None],
                    },
                )
            )
        return samples

    def target_hash(self, sample: Sample) -> str:
        return file_hash([m for m in sample.target["masks"] if m is not None])

    def annotation_files(self, data_root: Path, split: str) -> list[Path]:
        return [metadata_path(data_root)]

    # ---- prompting and parsing ----------------------------------------------------------------
    def build_prompt(self, sample: Sample) -> str:
        return _MEDIA_BLOCKS + _INSTRUCTION

    def parse(self, output: ModelOutput, sample: Sample) -> dict[str, list[dict[str, Any]]]:
        maps = map_list(output.masks)
        _check_frame_count(len(maps), sample)
        return {"masks": [encode_map(_class_id_map(m, index)) for index, m in enumerate(maps)]}

    def parsed_from_json(self, obj: Any, sample: Sample) -> dict[str, list[dict[str, Any]]]:
        masks = obj.get("masks") if isinstance(obj, dict) else None
        if not isinstance(masks, list):
            raise ParseError("an AVSS prediction is {'masks': [class-id map, ...]}")
        _check_frame_count(len(masks), sample)
        for index, encoded in enumerate(masks):
            if not (isinstance(encoded, dict) and "labels_png" in encoded):
                raise ParseError(f"map {index} is not a class-id map ('labels_png')")
            _check_labels(_decode(encoded, index), index)
        return {"masks": masks}

    # ---- scoring --------------------------------------------------------------------------------
    def score(self, sample: Sample, parsed: Any | None) -> ScoredSample:
        predicted = [resize_labels(_decode(m, i)) for i, m in enumerate(parsed["masks"])] if parsed is not None else []
        background = np.zeros((EVAL_SIZE, EVAL_SIZE), dtype=np.int64)
        preds, targets = [], []
        for index, path in enumerate(sample.target["masks"]):
            if path is None:
                continue
            targets.append(read_class_map(path))
            preds.append(predicted[index] if index < len(predicted) else background)
        n_real = len(sample.target["masks"])
        for index in range(n_real, FRAMES_PER_VIDEO):
            # Padded frames: background ground truth; a model that answered for real frames only predicts background.
            targets.append(background)
            preds.append(predicted[index] if index < len(predicted) else background)
        # 8-bit maps, as the label PNGs hold them (ids 0..70: checked when parsed, palette indices when
        # read): the pixel pass is fastest on them (including this conversion, 1.2x faster than on int64).
        stats = avss_stats(np.stack(preds).astype(np.uint8), np.stack(targets).astype(np.uint8))
        summary = {key: 100.0 * value for key, value in present_class_mean(stats).items()}
        return ScoredSample(summary=summary, stats=stats.to_json())

    def aggregate(self, samples: Sequence[Sample], stats: Sequence[Any]) -> dict[str, float]:
        total = AVSSStats(*(np.zeros(NUM_CLASSES) for _ in range(3)))
        for item in stats:
            total = total + AVSSStats.from_json(item)
        return {key: 100.0 * value for key, value in avss_scores(total, self.classes).items()}

    def unit_sums(self, samples: Sequence[Sample], stats: Sequence[Any]) -> UnitSums:
        rows = np.array([avss_unit_values(AVSSStats.from_json(item)) for item in stats]).reshape(len(stats), -1)
        full = rows.sum(axis=0)

        def percent(sums: np.ndarray) -> dict[str, np.ndarray]:
            # Resamples keep the full set's classes (a class no drawn video shows keeps its full-set
            # score): otherwise it scores 0 and the interval falls below the estimate (docs/metrics.md).
            return {key: 100.0 * value for key, value in avss_scores_of_sums(sums, self.classes, full=full).items()}

        return UnitSums(rows, percent)

    # ---- baseline support -----------------------------------------------------------------------
    def reference_output(self, sample: Sample) -> ModelOutput:
        maps = [read_class_map(p) if p is not None else np.zeros((EVAL_SIZE, EVAL_SIZE), dtype=np.int64)
                for p in sample.target["masks"]]
        return ModelOutput(text=f"The objects making sound in the video are: {sample.meta.get('a_obj', '')}.", masks=maps)

    def random_output(self, sample: Sample, rng: np.random.Generator) -> ModelOutput:
        """Per real frame: one uniformly random box filled with a uniformly random foreground class."""
        maps = []
        for _ in sample.target["masks"]:
            labels = np.zeros((EVAL_SIZE, EVAL_SIZE), dtype=np.int64)
            x1, x2 = np.sort(rng.integers(0, EVAL_SIZE, size=2))
            y1, y2 = np.sort(rng.integers(0, EVAL_SIZE, size=2))
            labels[y1:y2 + 1, x1:x2 + 1] = rng.integers(1, NUM_CLASSES)
            maps.append(labels)
        return ModelOutput(text="", masks=maps)

    def fit_prior(self, train_samples: Sequence[Sample]) -> dict[str, Any]:
        """The most frequent foreground class, painted on the pixels most often foreground in train.

        As many pixels are painted as the mean foreground area of a train frame, so the prior has the
        typical object size where objects typically lie. (A plain per-pixel majority would be all
        background, since no pixel is foreground in most frames.)
        """
        foreground = np.zeros((EVAL_SIZE, EVAL_SIZE))
        class_pixels = np.zeros(NUM_CLASSES)
        n_frames = 0
        for sample in train_samples:
            for path in sample.target["masks"]:
                if path is None:
                    continue
                labels = read_class_map(path)
                foreground += labels > 0
                class_pixels += np.bincount(labels.ravel(), minlength=NUM_CLASSES)
                n_frames += 1
        mask = np.zeros((EVAL_SIZE, EVAL_SIZE), dtype=bool)
        class_id = int(np.argmax(class_pixels[1:])) + 1
        if n_frames and class_pixels[1:].sum() > 0:
            n_pixels = int(round(class_pixels[1:].sum() / n_frames))
            order = np.argsort(-foreground.ravel(), kind="stable")  # ties broken in raster order
            mask.ravel()[order[:n_pixels]] = True
        return {"class_id": class_id, "mask": encode_binary(mask)}

    def prior_output(self, prior: dict[str, Any], sample: Sample) -> ModelOutput:
        labels = np.where(decode_map(prior["mask"]), int(prior["class_id"]), 0).astype(np.int64)
        return ModelOutput(text="", masks=[labels.copy() for _ in sample.target["masks"]])


def _check_frame_count(count: int, sample: Sample) -> None:
    n_real = len(sample.target["masks"])
    if count not in (n_real, FRAMES_PER_VIDEO):
        raise ParseError(f"expected {n_real} maps (one per real frame) or {FRAMES_PER_VIDEO}, got {count}")


def _class_id_map(array: Any, index: int) -> np.ndarray:
    """A model's AVSS answer for one frame as an int64 class-id map (docs/parsing.md).

    Accepted: a 2-D integer map of ids 0..70 (any size: resized when scored; a singleton axis is
    dropped), or float per-class scores of shape (71, H, W), read as the official evaluation does:
    the arg-max class per pixel (NaN scores never win). A float or bool 2-D map is a parse failure
    (probabilities or a binary mask, not class ids), as are ids outside 0..70.
    """
    try:
        raw = np.asarray(array)
    except Exception:  # a ragged or odd object; as_2d_map names it below
        raw = None
    if raw is not None and raw.ndim == 3 and raw.shape[0] == NUM_CLASSES and np.issubdtype(raw.dtype, np.floating):
        if np.isnan(raw).all(axis=0).any():
            raise ParseError(f"map {index} has pixels whose class scores are all NaN")
        return np.argmax(np.where(np.isnan(raw), -np.inf, raw), axis=0).astype(np.int64)
    labels = as_2d_map(array, index)
    _check_labels(labels, index)
    return labels.astype(np.int64)


def _check_labels(labels: np.ndarray, index: int) -> None:
    if labels.ndim != 2 or labels.size == 0:
        raise ParseError(f"map {index} must be a non-empty 2-D class-id map, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ParseError(f"map {index} must hold integer class ids, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise ParseError(f"map {index} has class ids outside 0..{NUM_CLASSES - 1}")


def _decode(encoded: Any, index: int) -> np.ndarray:
    try:
        return decode_map(encoded)
    except ValueError as exc:
        raise ParseError(f"map {index}: {exc}") from None
