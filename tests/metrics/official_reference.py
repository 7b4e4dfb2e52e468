"""Loop references of the official evaluation code, for conformance tests and speed baselines (test-only).

Each function restates one official function in our own words, keeping its arithmetic: the same loops,
thresholds, epsilons, skipping rules and averaging (quirks included). They are deliberately plain and
slow; `avbench.metrics` must equal them. Inputs are what the official code sees after its model: binary
matrices (AVVP), label sequences (AVE), answer indices (MUSIC-AVQA), and probability maps for the
segmentation metrics. The official segmentation functions apply `torch.sigmoid` to logits first; a
model in avbench already outputs probabilities, so the references start after that sigmoid.

Where the official code holds values in float32 torch tensors, so do these references (thresholds from
`torch.linspace`, per-frame precision/recall/F); sums across calls are kept in float64 (the official
`AverageMeter` sums float32 tensors or Python floats: a difference far below 1e-6).

Sources (read, not copied):
- YapengTian/AVVP-ECCV20 `utils/eval_metrics.py` (`extract_event`, `event_wise_metric`,
  `segment_level`, `event_level`) and `main_avvp.py:eval`;
- YapengTian/AVE-ECCV18 `supervised_main.py:compute_acc`;
- GeWu-Lab/MUSIC-AVQA `net_grd_avst/main_avst.py:test`;
- OpenNLPLab/AVSBench `avs_scripts/avs_s4/utils/utility.py` (`mask_iou`, `_eval_pr`, `Eval_Fmeasure`),
  `avs_scripts/avs_s4/test.py` (loop over test batches, `AverageMeter`),
  `avs_scripts/avss/utils/compute_color_metrics.py` (`_batch_miou_fscore`) and `avs_scripts/avss/test.py`;
- GeWu-Lab/Ref-AVS `utils/metric/utility.py` (`mask_iou` at 0.4, `Eval_Fmeasure`, `metric_s_for_null`),
  `scripts/train.py:test` (batches of 4 expressions x 10 frames), `datasets/dataset_refavs.py` (masks:
  cv2.imread, cv2.resize to 256 x 256, grey > 0) and `models/local/mask2former/image_processor_m2f.py`
  (predictions: bilinear to 256 x 256, align_corners=False); OpenCV 4.10 `imgproc/src/resize.cpp` for
  cv2.resize's fixed-point INTER_LINEAR;
- GeWu-Lab/Crab `utils/avss_utils.py` and `scripts/finetune/inference_hyper_lora.py` (the same
  functions called per frame).
ARIG has no official script (METRICS.md); its reference follows avbench's written definition.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
import torch

_F = TypeVar("_F", bound=Callable[..., Any])


def _one_thread(fn: _F) -> _F:
    """Run a torch reference on one thread (restored after): these loops issue thousands of tiny ops,
    and with the cores shared by other processes torch's thread pool makes each one ~100x slower,
    which would inflate every speed ratio measured against them."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return wrapper  # type: ignore[return-value]

# ---- AVVP (AVVP-ECCV20 utils/eval_metrics.py) ------------------------------------------------------


def avvp_extract_event(seq: np.ndarray) -> list[np.ndarray]:
    """`extract_event`: the maximal runs of 1 in a length-10 sequence, each as a 0/1 vector of length 10."""
    events = []
    i = 0
    while i < 10:
        if seq[i] == 1:
            start = i
            if i + 1 == 10:  # a run that starts on the last segment
                events.append(_segments(start, 10))
                break
            for j in range(i + 1, 10):
                if seq[j] != 1:
                    i = j + 1  # the official loop skips the 0 that ended the run
                    events.append(_segments(start, j))
                    break
                i = j + 1
                if i == 10:
                    events.append(_segments(start, 10))
                    break
        else:
            i += 1
    return events


def _segments(start: int, end: int) -> np.ndarray:
    vector = np.zeros(10)
    vector[start:end] = 1
    return vector


def avvp_event_wise_metric(pred_events: list[np.ndarray] | None, gt_events: list[np.ndarray] | None) -> tuple[int, int, int]:
    """`event_wise_metric`: a prediction is a TP when some ground-truth event has IoU >= 0.5 with it
    (inter >= 0.5 * union, so exactly one half counts), else an FP; a ground-truth event matched by no
    prediction is an FN. `None` = no event of the class (as the official code passes it)."""
    tp = fp = fn = 0
    if pred_events is not None:
        for x1 in pred_events:
            matched = gt_events is not None and any(
                np.sum(x1 * x2) >= 0.5 * np.sum(x1 + x2 - x1 * x2) for x2 in gt_events)
            if matched:
                tp += 1
            else:
                fp += 1
    if gt_events is not None:
        for x1 in gt_events:
            matched = pred_events is not None and any(
                np.sum(x1 * x2) >= 0.5 * np.sum(x1 + x2 - x1 * x2) for x2 in pred_events)
            if not matched:
                fn += 1
    return tp, fp, fn


def _avvp_class_f(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> float:
    """The official per-video reduction: F of each class with a prediction or a ground truth, their
    mean, or 1.0 when no class remains ("all true negatives")."""
    values = []
    for ii in range(len(tp)):
        if (tp + fp)[ii] != 0 or (tp + fn)[ii] != 0:
            values.append(2 * tp[ii] / (2 * tp[ii] + (fn + fp)[ii]))
    return 1.0 if len(values) == 0 else sum(values) / len(values)


def avvp_segment_level(so_a, so_v, so_av, gt_a, gt_v, gt_av) -> tuple[float, float, float, float]:
    """`segment_level`: (audio, visual, pooled "Event@AV", audio-visual) F of one video."""
    counts = {}
    for key, so, gt in (("a", so_a, gt_a), ("v", so_v, gt_v), ("av", so_av, gt_av)):
        counts[key] = (np.sum(so * gt, axis=1), np.sum(so * (1 - gt), axis=1), np.sum((1 - so) * gt, axis=1))
    pooled = tuple(counts["a"][k] + counts["v"][k] for k in range(3))
    return (_avvp_class_f(*counts["a"]), _avvp_class_f(*counts["v"]), _avvp_class_f(*pooled), _avvp_class_f(*counts["av"]))


def avvp_event_level(so_a, so_v, so_av, gt_a, gt_v, gt_av) -> tuple[float, float, float, float]:
    """`event_level`: (audio, visual, pooled "Event@AV", audio-visual) event F of one video."""
    n_classes = 25
    counts = {key: (np.zeros(n_classes), np.zeros(n_classes), np.zeros(n_classes)) for key in ("a", "v", "av")}
    for n in range(n_classes):
        for key, so, gt in (("a", so_a, gt_a), ("v", so_v, gt_v), ("av", so_av, gt_av)):
            pred_events = avvp_extract_event(so[n, :]) if np.sum(so[n, :]) != 0 else None
            gt_events = avvp_extract_event(gt[n, :]) if np.sum(gt[n, :]) != 0 else None
            tp, fp, fn = avvp_event_wise_metric(pred_events, gt_events)
            counts[key][0][n] += tp
            counts[key][1][n] += fp
            counts[key][2][n] += fn
    pooled = tuple(counts["a"][k] + counts["v"][k] for k in range(3))
    return (_avvp_class_f(*counts["a"]), _avvp_class_f(*counts["v"]), _avvp_class_f(*pooled), _avvp_class_f(*counts["av"]))


def avvp_eval(videos: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, float]:
    """`main_avvp.py:eval` over videos given as (pred audio, pred visual, gt audio, gt visual), each a
    (25, 10) 0/1 matrix; AV = A * V for prediction and truth. Returns the ten printed numbers (percent)
    under avbench's names, plus Crab's two averages of five."""
    lists: dict[str, list[float]] = {f"{lv}_{k}": [] for lv in ("segment", "event") for k in ("a", "v", "pool", "av")}
    for pred_a, pred_v, gt_a, gt_v in videos:
        so_a, so_v, ga, gv = (np.asarray(m, dtype=np.float64) for m in (pred_a, pred_v, gt_a, gt_v))
        so_av, gav = so_a * so_v, ga * gv
        for level, fn in (("segment", avvp_segment_level), ("event", avvp_event_level)):
            f_a, f_v, f, f_av = fn(so_a, so_v, so_av, ga, gv, gav)
            lists[f"{level}_a"].append(f_a)
            lists[f"{level}_v"].append(f_v)
            lists[f"{level}_pool"].append(f)
            lists[f"{level}_av"].append(f_av)
    result: dict[str, float] = {}
    for level in ("segment", "event"):
        audio = 100 * np.mean(np.array(lists[f"{level}_a"]))
        visual = 100 * np.mean(np.array(lists[f"{level}_v"]))
        av = 100 * np.mean(np.array(lists[f"{level}_av"]))
        type_av = (av + audio + visual) / 3.0  # the official "Type@Avg." print
        event_av = 100 * np.mean(np.array(lists[f"{level}_pool"]))  # the official "Event@Avg." print
        result.update({f"{level}_audio": audio, f"{level}_visual": visual, f"{level}_av": av,
                       f"{level}_type_av": type_av, f"{level}_event_av": event_av,
                       # Crab's table: the mean of the five numbers of the level
                       f"{level}_avg": (audio + visual + av + type_av + event_av) / 5.0})
    return result


# ---- AVE (AVE-ECCV18 supervised_main.py:compute_acc) ------------------------------------------------


def ave_accuracy(pred_labels: Sequence[Sequence[int]], gt_labels: Sequence[Sequence[int]]) -> float:
    """`compute_acc`: correct segments over all segments of all videos (background included), percent."""
    correct = total = 0
    for pred, gt in zip(pred_labels, gt_labels):
        for p, g in zip(pred, gt):
            correct += int(p == g)
            total += 1
    return 100.0 * correct / total


# ---- MUSIC-AVQA (net_grd_avst/main_avst.py:test) ---------------------------------------------------


def avqa_test(predicted: Sequence[int], target: Sequence[int], types: Sequence[tuple[str, str]]) -> dict[str, float]:
    """The official test loop: one 0/1 per question appended to its sub-type's list; groups pooled over
    their sub-types' lists; overall = correct / total. Empty lists are left out (the official code
    would divide by zero). Keys as avbench names them."""
    lists: dict[tuple[str, str], list[int]] = {}
    correct = total = 0
    for p, t, qtype in zip(predicted, target, types):
        total += 1
        correct += int(p == t)
        lists.setdefault(qtype, []).append(int(p == t))
    group_key = {"Audio": "audio", "Visual": "visual", "Audio-Visual": "audio_visual"}
    result: dict[str, float] = {}
    for (modality, kind), values in lists.items():
        result[f"{group_key[modality]}_{kind.lower()}"] = 100 * sum(values) / len(values)
    for modality, key in group_key.items():
        members = [v for (m, _), values in lists.items() if m == modality for v in values]
        if members:
            result[key] = 100 * sum(members) / len(members)
    result["avg"] = 100 * correct / total
    return result


# ---- ARIG (avbench's definition; no official script) -----------------------------------------------


def arig_ciou_auc(pred_boxes: Sequence[Sequence[Sequence[float]]], gt_boxes: Sequence[Sequence[float]]) -> dict[str, float]:
    """Best inclusive-pixel IoU per sample (no box: 0); cIoU = percent of samples with IoU >= 0.5;
    AUC = trapezoid area of the success rate over thresholds 0, 0.05, ..., 1."""
    ious = []
    for boxes, (gx1, gy1, gx2, gy2) in zip(pred_boxes, gt_boxes):
        best = 0.0
        for x1, y1, x2, y2 in boxes:
            x1, x2 = min(x1, x2), max(x1, x2)
            y1, y2 = min(y1, y2), max(y1, y2)
            iw = max(0.0, min(x2, gx2) - max(x1, gx1) + 1)
            ih = max(0.0, min(y2, gy2) - max(y1, gy1) + 1)
            inter = iw * ih
            union = (x2 - x1 + 1) * (y2 - y1 + 1) + (gx2 - gx1 + 1) * (gy2 - gy1 + 1) - inter
            best = max(best, inter / union)
        ious.append(best)
    thresholds = [i * 0.05 for i in range(21)]
    rates = [sum(iou >= t for iou in ious) / len(ious) for t in thresholds]
    area = sum((thresholds[i + 1] - thresholds[i]) * (rates[i + 1] + rates[i]) / 2 for i in range(20))
    return {"ciou": 100 * sum(iou >= 0.5 for iou in ious) / len(ious), "auc": area}


# ---- binary segmentation (AVSBench utility.py, Ref-AVS utils/metric/utility.py) --------------------


@_one_thread
def mask_iou(prob: torch.Tensor, target: torch.Tensor, threshold: float = 0.5, eps: float = 1e-7) -> float:
    """`mask_iou` on an (N, H, W) call: foreground = p > threshold (AVSBench 0.5, Ref-AVS 0.4); a frame
    with empty ground truth uses the background agreement over all pixels; mean over the N frames."""
    n = prob.size(0)
    num_pixels = prob.size(-1) * prob.size(-2)
    target = target.float()
    no_obj_flag = target.sum(2).sum(1) == 0
    pred = (prob > threshold).int()
    inter = (pred * target).sum(2).sum(1)
    union = torch.max(pred, target).sum(2).sum(1)
    inter_no_obj = ((1 - target) * (1 - pred)).sum(2).sum(1)
    inter[no_obj_flag] = inter_no_obj[no_obj_flag]
    union[no_obj_flag] = num_pixels
    return float(torch.sum(inter / (union + eps)) / n)


def _eval_pr(y_pred: torch.Tensor, y: torch.Tensor, num: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`_eval_pr`: precision and recall at `num` thresholds linspace(0, 1 - 1e-10), positive = p >= th."""
    prec, recall = torch.zeros(num), torch.zeros(num)
    thlist = torch.linspace(0, 1 - 1e-10, num)
    for i in range(num):
        y_temp = (y_pred >= thlist[i]).float()
        tp = (y_temp * y).sum()
        prec[i], recall[i] = tp / (y_temp.sum() + 1e-20), tp / (y.sum() + 1e-20)
    return prec, recall


@_one_thread
def eval_fmeasure(prob: torch.Tensor, gt: torch.Tensor, pr_num: int = 255) -> float:
    """`Eval_Fmeasure` on an (N, H, W) call: frames with all-black ground truth skipped; the F curve
    (beta^2 = 0.3, NaN -> 0) averaged over the kept frames; its max. No kept frame: 0."""
    gt = gt.float()
    beta2 = 0.3
    avg_f, img_num = 0.0, 0
    score = torch.zeros(pr_num)
    for img_id in range(prob.size(0)):
        if torch.mean(gt[img_id]) == 0.0:
            continue
        prec, recall = _eval_pr(prob[img_id], gt[img_id], pr_num)
        f_score = (1 + beta2) * prec * recall / (beta2 * prec + recall)
        f_score[f_score != f_score] = 0  # NaN
        avg_f += f_score
        img_num += 1
        score = avg_f / img_num
    return float(score.max().item())


@_one_thread
def metric_s_for_null(prob: torch.Tensor) -> float:
    """Ref-AVS `metric_s_for_null`: sqrt(pixels with p > 0.5 / all pixels), pooled over the call."""
    pred = (prob > 0.5).int()
    return float(torch.sqrt(torch.sum(pred.view(-1)) / prob.reshape(-1).shape[0]))


@_one_thread
def avsbench_test(videos: Sequence[tuple[np.ndarray, np.ndarray]], batch_size: int = 1) -> dict[str, float]:
    """`avs_s4/test.py`: the test set in batches of `batch_size` videos (no shuffling, the last batch
    may be smaller); per batch one `mask_iou` and one `Eval_Fmeasure` over its frames; each averaged
    over batches (`AverageMeter`). Videos are (probabilities (F, H, W), ground truth (F, H, W))."""
    miou_sum = f_sum = 0.0
    n_batches = 0
    for start in range(0, len(videos), batch_size):
        batch = videos[start : start + batch_size]
        prob = torch.from_numpy(np.concatenate([np.asarray(p, dtype=np.float32) for p, _ in batch]))
        mask = torch.from_numpy(np.concatenate([np.asarray(g, dtype=bool) for _, g in batch]))
        miou_sum += mask_iou(prob, mask)
        f_sum += eval_fmeasure(prob, mask)
        n_batches += 1
    return {"miou": 100 * miou_sum / n_batches, "f_score": 100 * f_sum / n_batches}


@_one_thread
def crab_per_frame(videos: Sequence[tuple[np.ndarray, np.ndarray]], threshold: float = 0.5) -> dict[str, float]:
    """Crab's inference scripts: `mask_iou` and `Eval_Fmeasure` called on one frame at a time, each
    averaged over all frames (so a frame with empty ground truth has F = 0 and counts)."""
    ious, fs = [], []
    for prob, gt in videos:
        for p, g in zip(np.asarray(prob, dtype=np.float32), np.asarray(gt, dtype=bool)):
            p_t, g_t = torch.from_numpy(p)[None], torch.from_numpy(g)[None]
            ious.append(mask_iou(p_t, g_t, threshold))
            fs.append(eval_fmeasure(p_t, g_t))
    return {"miou": 100 * float(np.mean(ious)), "f_score": 100 * float(np.mean(fs))}


@_one_thread
def refavs_test(expressions: Sequence[tuple[np.ndarray, np.ndarray]], null: bool, batch_size: int = 4) -> dict[str, float]:
    """`scripts/train.py:test` on one subset: batches of 4 expressions (40 frames); J = `mask_iou` at
    0.4 and F = `Eval_Fmeasure` per batch, or S = `metric_s_for_null` per batch on test_n; means over
    batches. J in percent, F and S fractions."""
    js, fs, ss = [], [], []
    for start in range(0, len(expressions), batch_size):
        batch = expressions[start : start + batch_size]
        prob = torch.from_numpy(np.concatenate([np.asarray(p, dtype=np.float32) for p, _ in batch]))
        mask = torch.from_numpy(np.concatenate([np.asarray(g, dtype=bool) for _, g in batch]))
        if null:
            ss.append(metric_s_for_null(prob))
        else:
            js.append(mask_iou(prob, mask, threshold=0.4))
            fs.append(eval_fmeasure(prob, mask))
    if null:
        return {"s": float(np.mean(ss))}
    return {"j": 100 * float(np.mean(js)), "f": float(np.mean(fs))}


def _cv2_taps_of(d: int, src: int, dst: int, clamp_weights: bool) -> tuple[int, int, int, int]:
    """OpenCV INTER_LINEAR for one output index `d` (resize.cpp, generic path, 8-bit): source position in
    float32, floor, fraction; weights (1 - f, f) x 2048 rounded half-to-even; columns out of range take
    the border pixel with weights (2048, 0), rows only clamp their two indices."""
    f = np.float32((d + 0.5) * (1.0 / (dst / src)) - 0.5)
    s = int(np.floor(f))
    f = np.float32(f - np.float32(s))
    if clamp_weights and s < 0:
        s, f = 0, np.float32(0)
    if clamp_weights and s >= src - 1:
        s, f = src - 1, np.float32(0)
    w0 = int(np.rint(np.float32(np.float32(1) - f) * np.float32(2048)))
    w1 = int(np.rint(f * np.float32(2048)))
    return min(max(s, 0), src - 1), min(max(s + 1, 0), src - 1), w0, w1


def refavs_cv2_resize(image: np.ndarray, size: int) -> np.ndarray:
    """`cv2.resize(gray_uint8, (size, size))` (INTER_LINEAR) pixel by pixel: the horizontal pass in exact
    integers, the vertical one as OpenCV's SIMD kernel (h >> 4, times the row weight, >> 16, summed,
    + 2, >> 2, saturated); an exact 2x halving is OpenCV's INTER_AREA ((sum of 4 + 2) >> 2); same size copies."""
    height, width = image.shape
    if (height, width) == (size, size):
        return image.copy()
    out = np.zeros((size, size), dtype=np.uint8)
    img = image.astype(np.int64)
    for dy in range(size):
        for dx in range(size):
            if height == 2 * size and width == 2 * size:
                block = img[2 * dy, 2 * dx] + img[2 * dy, 2 * dx + 1] + img[2 * dy + 1, 2 * dx] + img[2 * dy + 1, 2 * dx + 1]
                out[dy, dx] = (int(block) + 2) >> 2
                continue
            x0, x1, a0, a1 = _cv2_taps_of(dx, width, size, True)
            y0, y1, b0, b1 = _cv2_taps_of(dy, height, size, False)
            h0 = int(img[y0, x0]) * a0 + int(img[y0, x1]) * a1
            h1 = int(img[y1, x0]) * a0 + int(img[y1, x1]) * a1
            value = (((h0 >> 4) * b0) >> 16) + (((h1 >> 4) * b1) >> 16)
            out[dy, dx] = min(max((value + 2) >> 2, 0), 255)
    return out


@functools.lru_cache(maxsize=64)
def refavs_gt_mask(path: str, size: int = 256) -> torch.Tensor:
    """`REFAVS.__getitem__`'s mask for a grey PNG: cv2.imread (three equal channels), cv2.resize to
    size x size, BGR2GRAY (the value itself for equal channels), `torch.as_tensor(gray > 0, float32)`."""
    from PIL import Image

    with Image.open(path) as image:
        if image.mode != "L":
            raise ValueError(f"the reference reads grey (mode L) masks only, got {image.mode}")
        gray = np.asarray(image, dtype=np.uint8)
    return torch.as_tensor(refavs_cv2_resize(gray, size) > 0, dtype=torch.float32)


@_one_thread
def refavs_official_pipeline(expressions: Sequence[tuple[Sequence[np.ndarray], Sequence[str] | None]], null: bool,
                             size: int = 256) -> dict[str, float]:
    """The official path from a model's maps and the ground-truth files to the numbers of one subset:
    each map resized as `image_processor_m2f.post_process_semantic_segmentation` resizes its output
    (`F.interpolate(bilinear, align_corners=False)` to size x size; booleans as 0/1), the masks loaded as
    `refavs_gt_mask`, then `scripts/train.py:test` (`refavs_test`). Null expressions have no files: their
    masks (never read by S) are zeros."""
    prepared = []
    for maps, paths in expressions:
        probs = [torch.nn.functional.interpolate(torch.from_numpy(np.asarray(m, dtype=np.float32))[None, None],
                                                 size=(size, size), mode="bilinear", align_corners=False)[0, 0]
                 for m in maps]
        masks = torch.zeros((len(maps), size, size)) if paths is None else torch.stack([refavs_gt_mask(p, size) for p in paths])
        prepared.append((torch.stack(probs).numpy(), masks.numpy() > 0))
    return refavs_test(prepared, null=null)


# ---- AVSS (avss/utils/compute_color_metrics.py:_batch_miou_fscore, avss/test.py) --------------------


@_one_thread
def avss_batch_miou_fscore(predict_ids: torch.Tensor, target: torch.Tensor, nclass: int, beta2: float = 0.3
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`_batch_miou_fscore` after its argmax: ids shifted by one so that 0 marks "no intersection";
    per frame three `histc`s over 1..nclass; IoU = inter / (2.22e-16 + union), F with NaN -> 0, both
    summed over frames; a class counts in every frame where its union is non-zero."""
    predict = predict_ids.float() + 1
    target = target.float() + 1
    predict = predict * (target > 0).float()
    intersection = predict * (predict == target).float()
    cls_count = torch.zeros(nclass).float()
    ious = torch.zeros(nclass).float()
    fscores = torch.zeros(nclass).float()
    for i in range(target.shape[0]):
        area_inter = torch.histc(intersection[i], bins=nclass, min=1, max=nclass)
        area_pred = torch.histc(predict[i], bins=nclass, min=1, max=nclass)
        area_lab = torch.histc(target[i], bins=nclass, min=1, max=nclass)
        area_union = area_pred + area_lab - area_inter
        iou = 1.0 * area_inter.float() / (2.220446049250313e-16 + area_union.float())
        ious += iou
        cls_count[torch.nonzero(area_union).squeeze(-1)] += 1
        precision = area_inter / area_pred
        recall = area_inter / area_lab
        fscore = (1 + beta2) * precision * recall / (beta2 * precision + recall)
        fscore[torch.isnan(fscore)] = 0.0
        fscores += fscore
    return ious, fscores, cls_count


@_one_thread
def avss_test(videos: Sequence[tuple[np.ndarray, np.ndarray]], nclass: int = 71, batch_size: int = 4) -> dict[str, float]:
    """`avss/test.py`: per-class sums accumulated over all test batches, per class sum / count with
    NaN -> 0, mean over ALL classes; "noBg" = mean over `[:-1]` (drops the last class). Fractions.
    Videos are (predicted ids (F, H, W), ground-truth ids (F, H, W))."""
    miou_pc = torch.zeros(nclass, dtype=torch.float64)
    fs_pc = torch.zeros(nclass, dtype=torch.float64)
    cls_pc = torch.zeros(nclass, dtype=torch.float64)
    for start in range(0, len(videos), batch_size):
        batch = videos[start : start + batch_size]
        pred = torch.from_numpy(np.concatenate([np.asarray(p, dtype=np.int64) for p, _ in batch]))
        gt = torch.from_numpy(np.concatenate([np.asarray(g, dtype=np.int64) for _, g in batch]))
        ious, fscores, counts = avss_batch_miou_fscore(pred, gt, nclass)
        miou_pc += ious.double()
        fs_pc += fscores.double()
        cls_pc += counts.double()
    miou_pc = miou_pc / cls_pc
    miou_pc[torch.isnan(miou_pc)] = 0
    fs_pc = fs_pc / cls_pc
    fs_pc[torch.isnan(fs_pc)] = 0
    return {"miou": float(torch.mean(miou_pc)), "f_score": float(torch.mean(fs_pc)),
            "miou_no_bg": float(torch.mean(miou_pc[:-1])), "f_score_no_bg": float(torch.mean(fs_pc[:-1]))}
