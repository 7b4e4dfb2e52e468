"""Ref-AVS (ECCV 2024): segment the object a text expression refers to, in a 10-frame audio-visual clip.

One sample is one row (expression) of `ref_avs/metadata.csv` (`vid,uid,split,fid,exp`): frames
`media/<vid>/frames/<k>.jpg` (k = 0..9), audio `media/<vid>/audio.wav`, ground truth
`gt_mask/<vid>/fid_<fid>/<k:05d>.png` (foreground = non-zero). Splits: train, val, test_s (seen),
test_u (unseen), test_n (null: the referred object is absent) and test = test_s + test_u + test_n.
Notes on the real release:
- 25 rows have split `TODO`: they belong to no split and are skipped;
- a few uids repeat (11 in the test splits, some rows exact duplicates); the official loaders
  evaluate every row, so do we, and the k-th repeat of a uid gets the id `<uid>#k` (k >= 2);
- test_n is scored with S alone, which does not look at the ground truth: its masks are not read.

Metrics (`avbench.metrics.segmentation`), per test subset:
- J (`mask_iou`, percent) and F (`Eval_Fmeasure`, fraction) on test_s (`j_seen`, `f_seen`) and
  test_u (`j_unseen`, `f_unseen`); on train / val splits the same two as `j`, `f`;
- S on test_n (`s_null`, fraction, lower is better).
Variants (`variant=` option):
- `official` (default): GeWu-Lab/Ref-AVS `scripts/train.py:test` with the loaders of
  `run_refavs.py`: a call is a batch of 4 consecutive expressions (40 frames; the last may be
  smaller), J uses foreground = p > 0.4, F is one `Eval_Fmeasure` per call, S pools the call's
  pixels; each is averaged over calls.
- `crab`: Crab's `inference_ref_avs*` scripts call the same functions one frame at a time with
  threshold 0.5: J, F and S are means over frames (so a frame with empty ground truth has F = 0).
Resolution (`eval_size=` option, recorded in the results):
- `official` evaluates at 256 x 256 as GeWu-Lab/Ref-AVS: ground truth as `datasets/dataset_refavs.py`
  loads it (cv2 INTER_LINEAR to 256 x 256 on the 8-bit image, grey, foreground = value > 0;
  `_ref_avs_masks`), predictions of another size resized as `models/local/mask2former/
  image_processor_m2f.py` resizes its masks (torch bilinear, align_corners=False; booleans as 0/1),
  then thresholded by the metric functions. The official model resizes its logits and the metrics
  apply the sigmoid; avbench maps are probabilities (logits are refused, docs/parsing.md), so a map
  already at 256 x 256 is scored exactly as the official code scores the same probabilities, and a
  map of another size is resized as a probability map.
- `crab` evaluates at 224 x 224 as Crab's loader: ground truth by nearest neighbour, predictions of
  another size by nearest (booleans) or bilinearly (probabilities).
The oracle answers with the ground truth at the evaluation size, so it scores the maximum; a binary
mask at the original resolution would not (bilinear resizing and p > 0.4 shrink what the official
loader's value > 0 dilates).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from avbench.datasets.layout import dataset_folder
from avbench.datasets.text import checked_lines
from avbench.errors import AVBenchError, DataError, UnknownNameError
from avbench.masks import decode_map, read_binary_mask
from avbench.parsing import RepeatedIds
from avbench.metrics.segmentation import (
    EVAL_SIZE,
    FrameStats,
    call_fmeasure,
    call_null_s,
    calls_of_chunks,
    calls_per_frame,
    calls_per_unit,
    frame_stats,
    interpolate_bilinear,
    resize_nearest,
    to_eval_map,
    unit_call_sums,
)
from avbench.task import file_hash, stable_hash
from avbench.types import ModelOutput, Sample, ScoredSample, UnitSums

from ._ref_avs_masks import OFFICIAL_SIZE, read_official_mask
from .avsbench import VIDEO_AUDIO_BLOCKS, BinarySegmentationTask, calibrate_prior, positive_int_option

METADATA_COLUMNS = ("vid", "uid", "split", "fid", "exp")
SUBSETS = ("train", "val", "test_s", "test_u", "test_n")
#: Rows the release marks as not yet assigned to a split.
UNASSIGNED_SPLIT = "TODO"
FRAMES_PER_CLIP = 10
NULL_SUBSET = "test_n"
#: Metric names of each subset's J and F (test_n has S only).
JF_NAMES = {"test_s": ("j_seen", "f_seen"), "test_u": ("j_unseen", "f_unseen"), "train": ("j", "f"), "val": ("j", "f")}


@dataclass(frozen=True)
class RefAVSVariant:
    j_threshold: float
    #: Expressions per call of the metric functions; None = one call per frame.
    units_per_call: int | None
    description: str
    #: Default side of the square the masks are compared on.
    eval_size: int
    #: True: official loader and post-processing resizing (`_ref_avs_masks`, torch bilinear);
    #: False: Crab's (nearest-neighbour ground truth, `to_eval_map` for predictions).
    official_resize: bool


VARIANTS = {
    "official": RefAVSVariant(0.4, 4, "Ref-AVS test(): J at p > 0.4, F and S per call of 4 expressions (40 frames); "
                              "masks bilinearly resized (ground truth > 0)", OFFICIAL_SIZE, True),
    "crab": RefAVSVariant(0.5, None, "Crab scripts: J at p > 0.5, J, F and S as means over frames; "
                          "nearest-neighbour ground truth", EVAL_SIZE, False),
}


class RefAVSTask(BinarySegmentationTask):
    """Ref-AVS; see the module docstring."""

    name = "ref_avs"
    dataset_dir = "ref_avs"
    splits = ("train", "val", "test", "test_s", "test_u", "test_n")
    primary_metric = "j_seen"
    table_metrics = ("j_seen", "f_seen", "j_unseen", "f_unseen", "s_null")
    lower_is_better = frozenset({"s_null"})
    fraction_metrics = frozenset({"f_seen", "f_unseen", "f", "s_null"})
    description = "Ref-AVS: segment the object a text expression refers to (J %, F, null-set S)"
    absent_phrase = "is not in the video"
    #: 2: `official` evaluates at 256 x 256 with the official resizing (version 1: 224, nearest neighbour).
    TASK_VERSION = 2

    def __init__(self, variant: str = "official", eval_size: int | str | None = None):
        if variant not in VARIANTS:
            raise UnknownNameError("Ref-AVS variant", variant, list(VARIANTS))
        self.variant = variant
        self._rules = VARIANTS[variant]
        self.eval_size = self._rules.eval_size if eval_size is None else positive_int_option("eval_size", eval_size)
        if self.eval_size > 4096:
            raise AVBenchError(f"option eval_size must be at most 4096, got {self.eval_size}")

    def variants(self) -> dict[str, str]:
        return {"metrics": self.variant, "definition": self._rules.description, "eval_size": str(self.eval_size)}

    # ---- data -------------------------------------------------------------------------------------
    def load(self, data_root: Path, split: str) -> list[Sample]:
        if split not in self.splits:
            raise UnknownNameError("split", split, list(self.splits))
        wanted = ("test_s", "test_u", "test_n") if split == "test" else (split,)
        root = dataset_folder(data_root, "ref_avs")  # ref_avs/ or the release's refavs/ (docs/data-layout.md)
        by_subset: dict[str, list[Sample]] = {s: [] for s in wanted}
        for line, row, sample_id in self._read_rows(root / "metadata.csv"):
            if row["split"] in by_subset:
                by_subset[row["split"]].append(self._sample(root, split, row, sample_id, line))
        return [sample for subset in wanted for sample in by_subset[subset]]

    def annotation_files(self, data_root: Path, split: str) -> list[Path]:
        return [dataset_folder(data_root, "ref_avs") / "metadata.csv"]

    @staticmethod
    def _read_rows(path: Path):
        """(line, row, sample id) of every assigned row, in file order."""
        if not path.is_file():
            raise DataError("Ref-AVS metadata not found (expected the Ref-AVS layout, see docs/data-layout.md)", path)
        unique_id = RepeatedIds()
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(checked_lines(handle, path, "utf-8"))
            missing = [c for c in METADATA_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"header lacks columns {missing}; expected {','.join(METADATA_COLUMNS)}", path, 1)
            for row in reader:
                line = reader.line_num
                if row["split"] == UNASSIGNED_SPLIT:
                    continue
                if row["split"] not in SUBSETS:
                    raise DataError(f"unknown split {row['split']!r}; expected one of {SUBSETS}", path, line)
                if not row["uid"] or not row["vid"]:
                    raise DataError("empty vid or uid", path, line)
                if not (row["fid"] or "").strip().isdigit():
                    raise DataError(f"fid must be a non-negative integer, got {row['fid']!r}", path, line)
                yield line, row, unique_id(row["uid"])

    def _sample(self, root: Path, split: str, row: dict[str, str], sample_id: str, line: int) -> Sample:
        vid, subset, fid = row["vid"], row["split"], int(row["fid"])
        # Plain string joins: pathlib costs seconds over the 20k rows of the real release.
        media = f"{root}/media/{vid}"
        is_null = subset == NULL_SUBSET
        masks = [] if is_null else [f"{root}/gt_mask/{vid}/fid_{fid}/{k:05d}.png" for k in range(FRAMES_PER_CLIP)]
        # uid = <vid>_<object>_<n>: the object name is the answer Crab's training text gives.
        referent = row["uid"].rsplit("_", 2)[1] if row["uid"].count("_") >= 2 else ""
        return Sample(
            id=sample_id,
            task=self.name,
            split=split,
            media={"frames": [f"{media}/frames/{k}.jpg" for k in range(FRAMES_PER_CLIP)], "audio": f"{media}/audio.wav"},
            inputs={"expression": row["exp"]},
            target={"null": is_null, "masks": masks, "referent": referent},
            meta={"subset": subset, "vid": vid, "uid": row["uid"], "fid": fid, "line": line},
        )

    def target_hash(self, sample: Sample) -> str:
        if sample.target["null"]:
            return stable_hash({"null": True, "frames": self.n_frames(sample)})
        return file_hash(sample.target["masks"])

    def build_prompt(self, sample: Sample) -> str:
        return VIDEO_AUDIO_BLOCKS + (
            "Please segment out the object referred to by the following expression at each second of the video, "
            f"one mask for each of the {self.n_frames(sample)} seconds (an empty mask where the object is absent). "
            f"Expression: {sample.inputs['expression']}"
        )

    # ---- scoring ----------------------------------------------------------------------------------
    def _read_mask(self, path: str) -> np.ndarray:
        """One ground-truth mask at the evaluation size, resized as the variant's loader does (bool)."""
        if self._rules.official_resize:
            return read_official_mask(path, self.eval_size)
        return resize_nearest(read_binary_mask(path), self.eval_size)

    def _gt(self, sample: Sample) -> np.ndarray:
        size = self.eval_size
        if sample.target["null"]:
            return np.zeros((self.n_frames(sample), size, size), dtype=bool)
        return np.stack([self._read_mask(p) for p in sample.target["masks"]])

    def predicted_maps(self, parsed: Any | None, n_frames: int) -> np.ndarray:
        """(F, eval_size, eval_size) float32 probabilities; a parse failure is the empty prediction."""
        size = self.eval_size
        if parsed is None:
            return np.zeros((n_frames, size, size), dtype=np.float32)
        resize = interpolate_bilinear if self._rules.official_resize else to_eval_map
        return np.stack([resize(decode_map(m), size) for m in parsed["masks"]])

    def score(self, sample: Sample, parsed: Any | None) -> ScoredSample:
        stats = frame_stats(self.predicted_maps(parsed, self.n_frames(sample)), self._gt(sample), self._rules.j_threshold)
        one_call = calls_per_unit([stats.n_frames])
        per_frame = calls_per_frame(stats.n_frames)
        calls = one_call if self._rules.units_per_call else per_frame
        if sample.target["null"]:
            summary = {"s": float(call_null_s(stats, calls).mean())}
        else:
            summary = {"j": 100.0 * float(stats.iou.mean()), "f": float(call_fmeasure(stats, calls).mean())}
        return ScoredSample(summary, stats)

    def _calls(self, stats: Sequence[FrameStats]) -> np.ndarray:
        frames = [s.n_frames for s in stats]
        if self._rules.units_per_call is None:
            return calls_per_frame(int(sum(frames)))
        return calls_of_chunks(frames, self._rules.units_per_call)

    def aggregate(self, samples: Sequence[Sample], stats: Sequence[FrameStats]) -> dict[str, float]:
        """Per subset, the mean over calls of J, F (test_s, test_u, train, val) or S (test_n); computed
        from `unit_sums`, so the bootstrap agrees."""
        sums = self.unit_sums(samples, stats)
        return {name: float(value[0]) for name, value in sums.metrics(sums.values.sum(axis=0)[None]).items()}

    def unit_sums(self, samples: Sequence[Sample], stats: Sequence[FrameStats]) -> UnitSums:
        """Units: calls of 4 expressions (`official`, resampled whole) or expressions (`crab`). Each
        subset has its own block of the 4 `unit_call_sums` columns, as the official script evaluates
        each subset in its own run (calls never span two subsets)."""
        members: dict[str, list[int]] = {}
        for index, sample in enumerate(samples):
            members.setdefault(sample.meta["subset"], []).append(index)
        subsets = [s for s in SUBSETS if s in members]
        blocks, unit_of_sample, n_units = [], np.zeros(len(samples), dtype=np.int64), 0
        for column, subset in enumerate(subsets):
            group = [stats[i] for i in members[subset]]
            frames = [s.n_frames for s in group]
            calls = self._calls(group)
            if self._rules.units_per_call is None:  # one call per frame; the unit is the expression
                unit_of_call = calls_per_unit(frames)
                local_unit = np.arange(len(group))
            else:
                unit_of_call = np.arange(int(calls.max()) + 1 if calls.size else 0)
                local_unit = np.arange(len(group)) // self._rules.units_per_call
            n_local = int(local_unit.max()) + 1 if len(group) else 0
            block = np.zeros((n_local, 4 * len(subsets)))
            block[:, 4 * column : 4 * column + 4] = unit_call_sums(FrameStats.concat(group), calls, unit_of_call, n_local)
            blocks.append(block)
            unit_of_sample[members[subset]] = n_units + local_unit
            n_units += n_local
        values = np.concatenate(blocks) if blocks else np.zeros((0, 0))
        names = [name for name in (*self.table_metrics, "j", "f")]

        def metrics(sums: np.ndarray) -> dict[str, np.ndarray]:
            result: dict[str, np.ndarray] = {}
            with np.errstate(divide="ignore", invalid="ignore"):
                for column, subset in enumerate(subsets):
                    iou, f, s, n_calls = (sums[:, 4 * column + k] for k in range(4))
                    if subset == NULL_SUBSET:
                        result["s_null"] = s / n_calls
                    else:
                        j_name, f_name = JF_NAMES[subset]
                        result[j_name], result[f_name] = 100.0 * iou / n_calls, f / n_calls
            return {name: result[name] for name in names if name in result}

        return UnitSums(values, metrics, unit_of_sample)

    # ---- baselines --------------------------------------------------------------------------------
    @classmethod
    def answer_text(cls, expression: str, referent: str | None, n_frames: int) -> str:
        """Crab-style answer: the referent named (or said absent, `referent` None), then one mask group per frame."""
        expression = expression.rstrip(".")
        said = cls.absent_phrase if referent is None else f"is the {referent}"
        return f"{expression} {said}. " + cls.mask_text(n_frames)

    def reference_output(self, sample: Sample) -> ModelOutput:
        n, size = self.n_frames(sample), self.eval_size
        if sample.target["null"]:
            text = self.answer_text(sample.inputs["expression"], None, n)
            return ModelOutput(text, [np.zeros((size, size), dtype=bool) for _ in range(n)])
        text = self.answer_text(sample.inputs["expression"], sample.target["referent"], n)
        # The ground truth as scored (evaluation size): at its file's resolution the official bilinear
        # resize and p > 0.4 would not give back the loader's dilated (value > 0) mask.
        return ModelOutput(text, [self._read_mask(p) for p in sample.target["masks"]])

    def fit_prior(self, train_samples: Sequence[Sample]) -> np.ndarray:
        """The mean ground-truth mask at the evaluation size (as scored) over every frame of every train
        expression, calibrated as the other segmentation priors (`calibrate_prior`). A file listed k times
        counts k times but is read once."""
        paths = np.asarray([p for s in train_samples for p in s.target["masks"]], dtype=str)
        unique, counts = np.unique(paths, return_counts=True)
        total = np.zeros((self.eval_size, self.eval_size), dtype=np.float64)
        for path, count in zip(unique, counts):
            total += count * self._read_mask(str(path))
        return calibrate_prior((total / max(int(counts.sum()), 1)).astype(np.float32))
