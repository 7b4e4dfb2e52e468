"""AVSBench S4 (single sound source) and MS3 (multiple sound sources): binary sound-source segmentation.

One sample is one 5-second video (`v1s` rows of `avsbench/metadata.csv` for S4, `v1m` for MS3): the
model sees its 5 frames and its audio and returns one map per frame (probabilities or booleans;
`_checked_map` and docs/parsing.md say what else is tolerated). Ground truth: `labels_rgb/<i>.png`,
foreground = any non-black pixel. As in the official release, train videos of `v1s` carry only frame
0's mask; such a video is loaded with the masks that exist (they feed the mean-mask prior), val and
test videos must have all 5.

Scoring follows the official test loaders: everything at 224 x 224 (ground truth resized with
nearest neighbour, predictions of another size with nearest / bilinear), then `mask_iou` and
`Eval_Fmeasure` of `avbench.metrics.segmentation`. mIoU is the official mean over videos of each
video's mean frame IoU (equal to the per-frame mean when every video has 5 annotated frames). The
F-score depends on how frames are grouped into calls of `Eval_Fmeasure`: `f_grouping="per_video"`
(default) is the official AVSBench test (one call per video); `"per_frame"` reproduces Crab's
scripts (one call per frame, so a frame with empty ground truth scores 0 and still counts).
`batch_size=B` (per_video only; default 1, the official `--test_batch_size`) puts B consecutive
videos in each call, as the official loop over test batches; both numbers are means over calls.
Both metrics are reported in percent, as the Crab paper prints them.

`BinarySegmentationTask` holds what S4, MS3 and Ref-AVS share: parsing maps, resizing, the baselines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from avbench.errors import AVBenchError, DataError, ParseError, UnknownNameError
from avbench.masks import decode_map, encode_map, read_binary_mask
from avbench.parsing import as_2d_map, map_list
from avbench.metrics.segmentation import (
    EVAL_SIZE,
    FrameStats,
    call_fmeasure,
    calls_of_chunks,
    calls_per_frame,
    calls_per_unit,
    frame_stats,
    resize_nearest,
    to_eval_map,
    unit_call_sums,
)
from avbench.task import Task, file_hash
from avbench.types import ModelOutput, Sample, ScoredSample, UnitSums

from ._avsbench import metadata_path, read_avsbench

#: Crab's mask placeholder: 2 image scales x 3 tokens between start and end tokens.
MASK_TOKENS = "<mask_start>" + "".join(f"<mask_{i}>" for i in range(6)) + "<mask_end>"
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
VIDEO_AUDIO_BLOCKS = (
    "This is a video:\n<video_start><video><video_end>\n"
    "This is an audio:\n<audio_start><audio><audio_end>\n"
)
F_GROUPINGS = ("per_video", "per_frame")


def positive_int_option(name: str, value: int | str) -> int:
    """A task option that must be a positive integer (the CLI passes options as text)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise AVBenchError(f"option {name} must be a positive integer, got {value!r}") from None
    if number < 1 or str(number) != str(value).strip():
        raise AVBenchError(f"option {name} must be a positive integer, got {value!r}")
    return number


def _miou_f_of_sums(sums: np.ndarray) -> dict[str, np.ndarray]:
    """mIoU and F-score (percent) from column sums of `unit_call_sums` rows: means over calls."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"miou": 100.0 * sums[:, 0] / sums[:, 3], "f_score": 100.0 * sums[:, 1] / sums[:, 3]}


def read_gt_stack(paths: Sequence[str | Path]) -> np.ndarray:
    """Ground-truth masks as a (F, 224, 224) boolean stack (nearest-neighbour resize, as the test loaders)."""
    return np.stack([resize_nearest(read_binary_mask(p), EVAL_SIZE) for p in paths]) if paths else np.zeros((0, EVAL_SIZE, EVAL_SIZE), bool)


#: How far float rounding may push a probability outside [0, 1] (a bf16/fp16 sigmoid); further out is logits.
PROBABILITY_SLACK = 1e-3


def _checked_map(array: Any, index: int) -> np.ndarray:
    """A model's map as bool or float32 probabilities in [0, 1]; anything else is an unusable answer.

    Tolerated (docs/parsing.md): any size (resized when scored), a singleton axis (`(1, H, W)`),
    integer maps of 0/1 or 0/255 (binary), float16/32/64, NaN read as 0 (the official thresholding
    `p > t` / `p >= t` is false for NaN, so such pixels are background there too), values at most
    `PROBABILITY_SLACK` outside [0, 1] (clipped). A parse failure: values further outside (logits:
    the adapter must apply the sigmoid), infinities, other integer values (class ids), other dtypes.
    """
    array = as_2d_map(array, index)
    if array.dtype == bool:
        return array
    if np.issubdtype(array.dtype, np.integer):
        values = set(np.unique(array).tolist())
        if values <= {0, 1} or values <= {0, 255}:
            return array > 0
        raise ParseError(f"map {index} is an integer map with values other than 0/1 (or 0/255)")
    if np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
        if np.isinf(array).any():
            raise ParseError(f"map {index} holds infinite values")
        array = np.nan_to_num(array, nan=0.0)
        low, high = float(array.min()), float(array.max())
        if low < -PROBABILITY_SLACK or high > 1.0 + PROBABILITY_SLACK:
            raise ParseError(f"map {index} holds values outside [0, 1] ({low:.3g} .. {high:.3g}): "
                             "probabilities expected, not logits")
        return np.clip(array, 0.0, 1.0)
    raise ParseError(f"map {index} has unsupported dtype {array.dtype}")


def random_blob(rng: np.random.Generator, size: int = EVAL_SIZE) -> np.ndarray:
    """An ellipse with uniformly random centre and semi-axes (5-50 % of the side): a chance-level mask
    that, unlike per-pixel noise, stays small in a predictions file (RLE)."""
    cy, cx = rng.uniform(0, size, 2)
    ry, rx = rng.uniform(0.05 * size, 0.5 * size, 2)
    yy, xx = np.mgrid[0:size, 0:size]
    return ((yy + 0.5 - cy) / ry) ** 2 + ((xx + 0.5 - cx) / rx) ** 2 <= 1.0


class BinarySegmentationTask(Task):
    """Shared by S4, MS3 and Ref-AVS: one map per frame, parsed into `{"masks": [encoded map, ...]}`."""

    family = "pixel"
    output_kind = "mask"
    max_new_tokens = 100

    @staticmethod
    def n_frames(sample: Sample) -> int:
        return len(sample.media["frames"])

    # ---- parsing ----------------------------------------------------------------------------------
    def parse(self, output: ModelOutput, sample: Sample) -> Any:
        expected = self.n_frames(sample)
        maps = map_list(output.masks)
        if len(maps) != expected:  # which frame a map belongs to would be a guess
            raise ParseError(f"expected {expected} maps (one per frame), got {len(maps)}")
        return {"masks": [encode_map(_checked_map(m, i)) for i, m in enumerate(maps)]}

    def parsed_from_json(self, obj: Any, sample: Sample) -> Any:
        expected = self.n_frames(sample)
        if not isinstance(obj, dict) or not isinstance(obj.get("masks"), list):
            raise ParseError("a prediction must be an object with a list 'masks'")
        if len(obj["masks"]) != expected:
            raise ParseError(f"expected {expected} maps (one per frame), got {len(obj['masks'])}")
        for index, encoded in enumerate(obj["masks"]):
            try:
                decoded = decode_map(encoded)
            except ValueError as exc:
                raise ParseError(f"map {index}: {exc}") from None
            if decoded.dtype == np.int64:
                raise ParseError(f"map {index} is a class-id map; this task needs a binary or probability map")
        return obj

    def predicted_maps(self, parsed: Any | None, n_frames: int) -> np.ndarray:
        """(F, 224, 224) float32 probabilities; a parse failure is the empty prediction (all zeros)."""
        if parsed is None:
            return np.zeros((n_frames, EVAL_SIZE, EVAL_SIZE), dtype=np.float32)
        return np.stack([to_eval_map(decode_map(m)) for m in parsed["masks"]])

    # ---- baselines --------------------------------------------------------------------------------
    @staticmethod
    def mask_text(n_frames: int) -> str:
        return " ".join(f"At the {ORDINALS[i]} second, the mask is {MASK_TOKENS}." for i in range(n_frames))

    def random_output(self, sample: Sample, rng: np.random.Generator) -> ModelOutput:
        n = self.n_frames(sample)
        return ModelOutput(self.mask_text(n), [random_blob(rng) for _ in range(n)])

    @staticmethod
    def mean_mask(mask_paths: Sequence[str]) -> np.ndarray:
        """Mean of the masks at 224 x 224, calibrated (see `calibrate_prior`).

        A file listed k times counts k times but is read once.
        """
        unique, counts = np.unique(np.asarray(mask_paths, dtype=str), return_counts=True)
        total = np.zeros((EVAL_SIZE, EVAL_SIZE), dtype=np.float64)
        for path, count in zip(unique, counts):
            total += count * resize_nearest(read_binary_mask(path), EVAL_SIZE)
        return calibrate_prior((total / max(int(counts.sum()), 1)).astype(np.float32))

    def prior_output(self, prior: Any, sample: Sample) -> ModelOutput:
        n = self.n_frames(sample)
        prior = np.asarray(prior, dtype=np.float32)
        return ModelOutput(self.mask_text(n), [prior.copy() for _ in range(n)])


def calibrate_prior(mean: np.ndarray) -> np.ndarray:
    """Rescale a mean mask monotonically so that `p > 0.5` covers the mean foreground area.

    Where objects move around, the raw mean is below 0.5 almost everywhere and thresholding it
    predicts nothing. Scaling by 0.5 / t, with t the mean's quantile that leaves the mean foreground
    fraction above it, keeps the ranking of pixels (so the F-score's threshold sweep sees the same
    map) while the binarised prior has the typical object size where objects typically lie.
    """
    area = float(mean.mean())
    if area <= 0.0:
        return mean
    t = float(np.quantile(mean, 1.0 - area))
    if t <= 0.0:
        return mean
    return np.clip(mean * (0.5 / t), 0.0, 1.0).astype(np.float32)


class S4Task(BinarySegmentationTask):
    """AVSBench-object single-source segmentation (S4); see the module docstring."""

    name: ClassVar[str] = "s4"
    dataset_dir = "avsbench"
    subset: ClassVar[str] = "v1s"
    primary_metric = "miou"
    table_metrics = ("miou", "f_score")
    description = "AVSBench S4: segment the single sounding object in 5 frames (mIoU, F-score, %)"
    instruction: ClassVar[str] = (
        "Please recognize the category of the object making the sound in the video, and then segment out "
        "the object that makes the sound at each second of the video: one mask for each of the {n} seconds."
    )

    def __init__(self, f_grouping: str = "per_video", batch_size: int | str = 1):
        if f_grouping not in F_GROUPINGS:
            raise UnknownNameError("F-score grouping", f_grouping, list(F_GROUPINGS))
        self.f_grouping = f_grouping
        self.batch_size = positive_int_option("batch_size", batch_size)
        if f_grouping == "per_frame" and self.batch_size != 1:
            raise AVBenchError("batch_size (videos per call of the metric functions) applies to f_grouping=per_video; "
                               "per_frame calls them on single frames")

    def variants(self) -> dict[str, str]:
        if self.f_grouping == "per_frame":
            return {"f_score": self.f_grouping}
        return {"f_score": self.f_grouping, "batch_size": str(self.batch_size)}

    # ---- data -------------------------------------------------------------------------------------
    def load(self, data_root: Path, split: str) -> list[Sample]:
        if split not in self.splits:
            raise UnknownNameError("split", split, list(self.splits))
        samples: list[Sample] = []
        seen: set[str] = set()
        for video in read_avsbench(data_root, split, (self.subset,)):
            if video.uid in seen:
                raise DataError(f"duplicate uid {video.uid!r} in split {split!r}", metadata_path(data_root))
            seen.add(video.uid)
            frames = range(video.n_frames)
            if split == "train":
                mask_frames = [i for i in frames if video.mask(i).is_file()]
                if not mask_frames:
                    raise DataError("train video without any mask", video.mask(0))
            else:
                for i in frames:
                    if not video.mask(i).is_file():
                        raise DataError(f"missing ground-truth mask of frame {i}", video.mask(i))
                mask_frames = list(frames)
            samples.append(
                Sample(
                    id=video.uid,
                    task=self.name,
                    split=split,
                    media={"frames": [str(video.frame(i)) for i in frames], "audio": str(video.audio)},
                    inputs={},
                    target={
                        "category": video.a_obj,
                        "mask_frames": mask_frames,
                        "masks": [str(video.mask(i)) for i in mask_frames],
                    },
                    meta={"vid": video.vid, "subset": video.subset, "category": video.a_obj},
                )
            )
        return samples

    def target_hash(self, sample: Sample) -> str:
        return file_hash(sample.target["masks"])

    def annotation_files(self, data_root: Path, split: str) -> list[Path]:
        return [metadata_path(data_root)]

    def build_prompt(self, sample: Sample) -> str:
        return VIDEO_AUDIO_BLOCKS + self.instruction.format(n=self.n_frames(sample))

    # ---- scoring ----------------------------------------------------------------------------------
    def score(self, sample: Sample, parsed: Any | None) -> ScoredSample:
        gt = read_gt_stack(sample.target["masks"])
        pred = self.predicted_maps(parsed, self.n_frames(sample))[sample.target["mask_frames"]]
        stats = frame_stats(pred, gt, iou_threshold=0.5)
        if self.f_grouping == "per_video":
            f_value = float(call_fmeasure(stats, calls_per_unit([stats.n_frames]))[0])
        else:
            f_value = float(call_fmeasure(stats, calls_per_frame(stats.n_frames)).mean())
        return ScoredSample({"miou": 100.0 * float(stats.iou.mean()), "f_score": 100.0 * f_value}, stats)

    def aggregate(self, samples: Sequence[Sample], stats: Sequence[FrameStats]) -> dict[str, float]:
        """Mean over calls of `mask_iou` and `Eval_Fmeasure` (official test loop, batch `batch_size`),
        or over frames (`per_frame`, Crab); computed from `unit_sums`, so the bootstrap agrees."""
        if not stats:
            return {}
        sums = self.unit_sums(samples, stats)
        return {name: float(value[0]) for name, value in sums.metrics(sums.values.sum(axis=0)[None]).items()}

    def unit_sums(self, samples: Sequence[Sample], stats: Sequence[FrameStats]) -> UnitSums:
        frames = [s.n_frames for s in stats]
        if self.f_grouping == "per_frame":
            # Crab calls the metrics on each frame; the unit resampled is still the video.
            calls = calls_per_frame(int(sum(frames)))
            unit_of_call, unit_of_sample = calls_per_unit(frames), None
        else:
            # The official test loop: one call per batch of `batch_size` videos, resampled whole.
            calls = calls_of_chunks(frames, self.batch_size)
            unit_of_call = np.arange(int(calls.max()) + 1 if calls.size else 0)
            unit_of_sample = np.arange(len(frames)) // self.batch_size
        n_units = int(unit_of_call.max()) + 1 if unit_of_call.size else 0
        values = unit_call_sums(FrameStats.concat(list(stats)), calls, unit_of_call, n_units)
        return UnitSums(values, _miou_f_of_sums, unit_of_sample)

    # ---- baselines --------------------------------------------------------------------------------
    def reference_output(self, sample: Sample) -> ModelOutput:
        target = sample.target
        gt = {i: read_binary_mask(p) for i, p in zip(target["mask_frames"], target["masks"])}
        shape = next(iter(gt.values())).shape
        masks = [gt.get(i, np.zeros(shape, dtype=bool)) for i in range(self.n_frames(sample))]
        text = f"The object making the sound in the video is {target['category']}. " + self.mask_text(len(masks))
        return ModelOutput(text, masks)

    def fit_prior(self, train_samples: Sequence[Sample]) -> np.ndarray:
        """The mean ground-truth mask (224 x 224) over every mask of the train split."""
        return self.mean_mask([p for s in train_samples for p in s.target["masks"]])


class MS3Task(S4Task):
    """AVSBench-object multi-source segmentation (MS3); see the module docstring."""

    name = "ms3"
    subset = "v1m"
    description = "AVSBench MS3: segment all sounding objects in 5 frames (mIoU, F-score, %)"
    instruction = (
        "Please recognize the categories of the objects making sounds in the video, and then segment out "
        "the objects that make sounds at each second of the video: one mask for each of the {n} seconds."
    )
