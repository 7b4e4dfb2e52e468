"""Every metric equals its official evaluation code (the loop references in official_reference.py).

Randomised cases (fixed seeds) cover the quirks: empty ground truth, empty and full predictions,
one-segment holes, IoU of exactly one half, batches that span videos, the partial last batch,
classes that never occur. Tolerance: 1e-6 on the fraction scale (the official code computes
per-frame values in float32, avbench in float64).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avbench.metrics.ave import correct_segments, segment_accuracy, segment_labels
from avbench.metrics.avqa import avqa_accuracies
from avbench.metrics.avss import AVSSStats, avss_scores, avss_stats
from avbench.metrics.avvp import avvp_scores, unit_counts
from avbench.metrics.boxes import auc, best_iou, ciou
from avbench.metrics.segmentation import frame_stats
from avbench.types import Sample
from avbench.vocab import AVQA_QUESTION_TYPES
from metrics.official_reference import (
    arig_ciou_auc,
    avqa_test,
    avsbench_test,
    avss_test,
    avvp_eval,
    ave_accuracy,
    crab_per_frame,
    eval_fmeasure,
    mask_iou,
    refavs_official_pipeline,
    refavs_test,
)
from avbench.tasks.avsbench import S4Task
from avbench.tasks.ref_avs import RefAVSTask

C, T = 25, 10


def close(fast: dict[str, float], ref: dict[str, float], scale: float = 1.0) -> None:
    """Same keys, values equal to 1e-6 on the fraction scale (`scale` = 100 for percent metrics)."""
    assert set(fast) == set(ref)
    for key in ref:
        assert fast[key] == pytest.approx(ref[key], abs=1e-6 * scale, rel=0), key


# ---- AVVP ---------------------------------------------------------------------------------------------
def random_events(rng: np.random.Generator, density: float) -> np.ndarray:
    """(25, 10) matrix: a few classes with random runs (holes included), or nothing at all."""
    m = np.zeros((C, T), dtype=np.int64)
    for c in rng.choice(C, size=rng.integers(0, 4), replace=False):
        m[c] = rng.random(T) < density
    return m


def test_avvp_equals_the_official_eval_on_random_videos():
    rng = np.random.default_rng(0)
    videos = []
    for i in range(80):
        gt_a, gt_v = random_events(rng, 0.6), random_events(rng, 0.5)
        kind = i % 5
        if kind == 0:  # exact prediction
            pred_a, pred_v = gt_a.copy(), gt_v.copy()
        elif kind == 1:  # nothing predicted
            pred_a, pred_v = np.zeros_like(gt_a), np.zeros_like(gt_v)
        elif kind == 2:  # shifted by one segment
            pred_a, pred_v = np.roll(gt_a, 1, axis=1), np.roll(gt_v, -1, axis=1)
        else:
            pred_a, pred_v = random_events(rng, 0.5), random_events(rng, 0.7)
        videos.append((pred_a, pred_v, gt_a, gt_v))
    # two videos with empty ground truth in one modality (as 121 real test videos have no visual rows)
    videos.append((np.zeros((C, T)), random_events(rng, 0.5), np.zeros((C, T)), np.zeros((C, T))))
    videos.append((random_events(rng, 0.5), np.zeros((C, T)), random_events(rng, 0.5), np.zeros((C, T))))
    pa, pv, ga, gv = (np.stack([v[k] for v in videos]) for k in range(4))
    close(avvp_scores(unit_counts(pa, pv, ga, gv)), avvp_eval(videos), scale=100)


def test_avvp_event_iou_of_one_half_and_holes_match_the_official_code():
    gt = np.zeros((C, T), dtype=np.int64)
    gt[0, 0:4] = 1  # event [0, 4)
    gt[1, 0:10] = 1
    pred = np.zeros((C, T), dtype=np.int64)
    pred[0, 0:2] = 1  # IoU 2 / 4 = 0.5 exactly: a TP in the official code
    pred[1, [0, 1, 2, 4, 5, 6, 7, 8, 9]] = 1  # a one-segment hole: two events
    videos = [(pred, pred, gt, gt)]
    fast = avvp_scores(unit_counts(pred[None], pred[None], gt[None], gt[None]))
    close(fast, avvp_eval(videos), scale=100)
    # By hand: class 0 TP 1 -> F 1; class 1: [0,3) IoU 0.3 FP, [4,10) IoU 0.6 TP, truth matched -> 2/3.
    assert fast["event_audio"] == pytest.approx(100 * (1 + 2 / 3) / 2)


# ---- AVE ------------------------------------------------------------------------------------------------
def test_ave_equals_compute_acc():
    rng = np.random.default_rng(1)
    n = 50
    gt = segment_labels(rng.integers(0, 28, n), rng.integers(0, 5, n), rng.integers(5, 11, n), background=28)
    pred = segment_labels(rng.integers(0, 28, n), rng.integers(0, 6, n), rng.integers(4, 11, n), background=28)
    pred[:10] = gt[:10]
    correct = correct_segments(pred, gt)
    assert segment_accuracy(correct, np.full(n, 10)) == pytest.approx(ave_accuracy(pred.tolist(), gt.tolist()), abs=1e-9)


# ---- MUSIC-AVQA -------------------------------------------------------------------------------------------
def test_avqa_equals_the_official_test_loop():
    rng = np.random.default_rng(2)
    n = 700
    type_ids = rng.integers(0, len(AVQA_QUESTION_TYPES), n)
    type_ids[type_ids == 3] = 4  # one sub-type absent: its key and nothing else disappears
    target = rng.integers(0, 42, n)
    predicted = np.where(rng.random(n) < 0.6, target, rng.integers(0, 42, n))
    types = [tuple(AVQA_QUESTION_TYPES[t].split("/")) for t in type_ids]
    close(avqa_accuracies(predicted == target, type_ids), avqa_test(predicted, target, types), scale=100)


# ---- ARIG -----------------------------------------------------------------------------------------------
def test_arig_equals_the_definition_loop():
    rng = np.random.default_rng(3)
    gt_boxes, pred_boxes = [], []
    for i in range(200):
        x1, y1 = rng.integers(0, 150, 2)
        w, h = rng.integers(1, 70, 2)
        gt = [int(x1), int(y1), int(x1 + w), int(y1 + h)]
        gt_boxes.append(gt)
        if i % 10 == 0:
            pred_boxes.append([])  # no box: IoU 0
        elif i % 10 == 1:
            pred_boxes.append([[gt[2], gt[3], gt[0], gt[1]]])  # corners swapped: the same box
        else:
            jitter = rng.integers(-15, 16, (int(rng.integers(1, 4)), 4))
            pred_boxes.append((np.array(gt)[None] + jitter).tolist())
    # IoU exactly 0.5 (inclusive pixels): 10 x 10 truth, 10 x 5 prediction inside it.
    gt_boxes.append([0, 0, 9, 9])
    pred_boxes.append([[0, 0, 9, 4]])
    ious = [best_iou(p, g) for p, g in zip(pred_boxes, gt_boxes)]
    assert ious[-1] == 0.5
    close({"ciou": 100 * ciou(ious), "auc": auc(ious)}, arig_ciou_auc(pred_boxes, gt_boxes), scale=100)


# ---- binary segmentation: S4 / MS3 and Ref-AVS --------------------------------------------------------
def random_video(rng: np.random.Generator, n_frames: int, kind: int, shape=(12, 14)) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (quantised to k/255 as stored, or raw float32) and ground truth, with the edge cases."""
    gt = rng.random((n_frames, *shape)) < rng.uniform(0.05, 0.5)
    prob = (rng.integers(0, 256, (n_frames, *shape)) / 255).astype(np.float32)
    if kind == 1:
        gt[:] = False  # empty ground truth everywhere (mIoU = background fraction, F skipped)
    elif kind == 2:
        prob[:] = 0.0  # empty prediction
    elif kind == 3:
        prob[:] = 1.0  # everything foreground
    elif kind == 4:
        prob = rng.random((n_frames, *shape)).astype(np.float32)  # unquantised
        gt[0] = False
    elif kind == 5:
        prob = gt.astype(np.float32)  # perfect binary prediction
    return prob, gt


def s4_aggregate(task: S4Task, videos) -> dict[str, float]:
    stats = [frame_stats(p, g, 0.5) for p, g in videos]
    samples = [Sample(str(i), "s4", "test", {}) for i in range(len(videos))]
    return task.aggregate(samples, stats)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_s4_ms3_batch_averaged_equals_the_official_test_loop(batch_size):
    rng = np.random.default_rng(10 + batch_size)
    videos = [random_video(rng, 5, i % 6) for i in range(11)]  # 11 videos: the last batch is partial
    fast = s4_aggregate(S4Task(batch_size=batch_size), videos)
    close(fast, avsbench_test(videos, batch_size), scale=100)


def test_s4_per_frame_equals_crabs_per_frame_calls():
    rng = np.random.default_rng(20)
    videos = [random_video(rng, 5, i % 6) for i in range(8)]
    close(s4_aggregate(S4Task(f_grouping="per_frame"), videos), crab_per_frame(videos), scale=100)


def test_single_frame_calls_by_hand():
    # One 2 x 2 frame, GT = {0, 1}, p = (0.9, 0.3, 0.6, 0.0): mIoU at 0.5: P = {0, 2}, inter 1, union 3.
    prob = torch.tensor([[[0.9, 0.3], [0.6, 0.0]]])
    gt = torch.tensor([[[1, 1], [0, 0]]])
    assert mask_iou(prob, gt) == pytest.approx(1 / (3 + 1e-7))
    # F: best threshold in (0.6, 0.9]: P = 1, R = 1/2 -> 1.3 * 0.5 / (0.3 + 0.5) = 0.8125.
    assert eval_fmeasure(prob, gt) == pytest.approx(0.8125, rel=1e-6)
    fast = s4_aggregate(S4Task(), [(prob.numpy(), gt.numpy().astype(bool))])
    assert fast == pytest.approx({"miou": 100 / (3 + 1e-7), "f_score": 81.25}, rel=1e-6)


def refavs_case(rng: np.random.Generator):
    samples, stats, per_subset = [], [], {}
    for subset, n in (("test_s", 6), ("test_u", 3), ("test_n", 5)):
        videos = [random_video(rng, 10, i % 6, shape=(8, 9)) for i in range(n)]
        if subset == "test_n":
            videos = [(p, np.zeros_like(g)) for p, g in videos]
        per_subset[subset] = videos
        for i, (p, g) in enumerate(videos):
            samples.append(Sample(f"{subset}{i}", "ref_avs", "test", {}, meta={"subset": subset}))
            stats.append((p, g))
    return samples, stats, per_subset


def test_ref_avs_official_equals_the_official_test_per_subset():
    samples, maps, per_subset = refavs_case(np.random.default_rng(30))
    task = RefAVSTask()
    fast = task.aggregate(samples, [frame_stats(p, g, 0.4) for p, g in maps])
    ref_s, ref_u = refavs_test(per_subset["test_s"], null=False), refavs_test(per_subset["test_u"], null=False)
    ref_n = refavs_test(per_subset["test_n"], null=True)
    expected = {"j_seen": ref_s["j"], "f_seen": ref_s["f"], "j_unseen": ref_u["j"], "f_unseen": ref_u["f"], "s_null": ref_n["s"]}
    for key, value in expected.items():
        scale = 100 if key.startswith("j") else 1
        assert fast[key] == pytest.approx(value, abs=1e-6 * scale, rel=0), key


def test_ref_avs_crab_variant_calls_per_frame_at_05():
    samples, maps, per_subset = refavs_case(np.random.default_rng(31))
    task = RefAVSTask(variant="crab")
    fast = task.aggregate(samples, [frame_stats(p, g, 0.5) for p, g in maps])
    seen = crab_per_frame(per_subset["test_s"])
    assert fast["j_seen"] == pytest.approx(seen["miou"], abs=1e-4)
    assert fast["f_seen"] == pytest.approx(seen["f_score"] / 100, abs=1e-6)
    null_frames = [torch.from_numpy(f)[None] for p, _ in per_subset["test_n"] for f in p]
    from metrics.official_reference import metric_s_for_null

    assert fast["s_null"] == pytest.approx(np.mean([metric_s_for_null(f) for f in null_frames]), abs=1e-6)


#: Probabilities around the Ref-AVS thresholds that survive the 8-bit storage of predicted maps
#: unchanged (k / 255): 102 / 255 is 0.4 itself in float32; 127 / 255 and 128 / 255 straddle 0.5.
NEAR_THRESHOLDS = np.array([0, 101, 102, 103, 127, 128, 255], dtype=np.float32) / np.float32(255)


def crafted_map(rng: np.random.Generator, size: int, kind: int) -> np.ndarray:
    """A predicted map: a boolean blob, an empty map, or a blob whose pixels sit near 0.4 / 0.5 on a
    background of small values, so that bilinear resizing moves pixels across the thresholds."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    blob = (yy - rng.uniform(0.2, 0.8)) ** 2 + (xx - rng.uniform(0.2, 0.8)) ** 2 < rng.uniform(0.02, 0.15)
    if kind == 0:
        return blob
    if kind == 1:
        return np.zeros((size, size), bool)
    inside = rng.choice(NEAR_THRESHOLDS[1:], size=(size, size))
    outside = rng.choice(NEAR_THRESHOLDS[:4], size=(size, size), p=[0.7, 0.1, 0.1, 0.1])
    return np.where(blob, inside, outside).astype(np.float32)


@pytest.fixture(scope="module")
def refavs_gt_files(tmp_path_factory) -> list[str]:
    """Grey 0/255 ground-truth PNGs of several sizes (odd, an exact 2x of 256, wide 720p) and an empty one."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("refavs_gt")
    rng = np.random.default_rng(32)
    paths = []
    for i, (h, w) in enumerate([(37, 53), (512, 512), (300, 200), (720, 1280), (90, 160)]):
        yy, xx = np.mgrid[0:h, 0:w]
        mask = ((yy / h - rng.uniform(0.3, 0.7)) ** 2 + (xx / w - rng.uniform(0.3, 0.7)) ** 2) < 0.05
        mask |= rng.random((h, w)) < 0.002  # isolated pixels: their reach after resizing depends on rounding
        if i == 4:
            mask[:] = False  # a frame whose referred object is not visible: empty ground truth
        path = folder / f"{i}.png"
        Image.fromarray(mask.astype(np.uint8) * 255, "L").save(path)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("pred_size", [224, 64, 320, 256])
def test_ref_avs_official_pipeline_equals_the_official_loader_and_test(refavs_gt_files, pred_size):
    """From the model's maps (any size) and the mask files to J, F and S: avbench's `official` variant
    against the official loader (cv2 bilinear to 256, > 0), post-processing (torch bilinear) and test loop."""
    from avbench.scoring import parse_output
    from avbench.types import ModelOutput

    rng = np.random.default_rng(33 + pred_size)
    task = RefAVSTask()
    samples, outputs, per_subset = [], [], {}
    for subset, n in (("test_s", 6), ("test_u", 3), ("test_n", 5)):
        per_subset[subset] = []
        for i in range(n):
            null = subset == "test_n"
            paths = None if null else [refavs_gt_files[(i + k) % len(refavs_gt_files)] for k in range(10)]
            maps = [crafted_map(rng, pred_size, (i + k) % 4 if k else 1 + (i % 3)) for k in range(10)]
            samples.append(Sample(f"{subset}{i}", "ref_avs", "test", {"frames": [""] * 10}, {"expression": "x"},
                                  {"null": null, "masks": paths or [], "referent": "x"}, {"subset": subset}))
            outputs.append(ModelOutput("", maps))
            per_subset[subset].append((maps, paths))
    parsed = [parse_output(task, s, o) for s, o in zip(samples, outputs)]
    assert all(p.ok for p in parsed)
    fast = task.aggregate(samples, [task.score(s, p.parsed).stats for s, p in zip(samples, parsed)])
    ref_s, ref_u = (refavs_official_pipeline(per_subset[k], null=False) for k in ("test_s", "test_u"))
    ref_n = refavs_official_pipeline(per_subset["test_n"], null=True)
    expected = {"j_seen": ref_s["j"], "f_seen": ref_s["f"], "j_unseen": ref_u["j"], "f_unseen": ref_u["f"], "s_null": ref_n["s"]}
    for key, value in expected.items():
        scale = 100 if key.startswith("j") else 1
        assert fast[key] == pytest.approx(value, abs=1e-6 * scale, rel=0), key
    assert 0 < fast["s_null"] < 1 and 0 < fast["j_seen"] < 100  # the case exercises every metric


# ---- AVSS -----------------------------------------------------------------------------------------------
def test_avss_equals_the_official_accumulation():
    rng = np.random.default_rng(40)
    videos = []
    for i in range(9):
        classes = rng.choice(71, size=4, replace=False)
        classes[0] = 0  # background present
        gt = classes[rng.integers(0, 4, (10, 10, 12))]
        pred = np.where(rng.random(gt.shape) < 0.7, gt, classes[rng.integers(0, 4, gt.shape)])
        if i == 0:
            gt[5:] = 0  # padded all-background frames (v1 videos)
            pred[5:] = 0
        if i == 1:
            pred[:] = 0  # empty prediction
        if i == 2:
            pred[:, :2] = 70  # the last class ("woman") predicted but absent
        videos.append((pred, gt))
    total = AVSSStats(*(np.zeros(71) for _ in range(3)))
    for pred, gt in videos:
        total = total + avss_stats(pred, gt)
    ref = avss_test(videos)
    close(avss_scores(total), {"miou": ref["miou"], "f_score": ref["f_score"]})
    close(avss_scores(total, "no_bg"), {"miou": ref["miou_no_bg"], "f_score": ref["f_score_no_bg"]})
