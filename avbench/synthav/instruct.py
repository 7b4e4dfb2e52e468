"""SynthAV as instruction data in the AV-UIE style: media references + instruction + an answer that
reasons explicitly (what is seen, what is heard, how the two relate) before the tagged result.

Crab's AV-UIE data (GeWu-Lab/Crab) pairs each clip with a task instruction and an answer whose
explanation names the audio-visual evidence before the result tags. SynthAV knows its scenes exactly
(`synthav.json`), so the explanation is true by construction. The instruction of every record is the
task's own evaluation prompt (`Task.build_prompt`), so a model trained on these records is asked at
test time exactly what it was taught to answer.

One JSON object per line (docs/training.md, "Instruction data"):

    {"id": "ave/psEAfRY7uDI", "task": "ave", "split": "train",
     "media": {"video": "ave/videos/psEAfRY7uDI.mp4", "audio": "ave/audios/psEAfRY7uDI.wav"},
     "instruction": "...", "answer": "Seen: ... Heard: ... <event>Bark</event> <range>2,5</range>.",
     "masks": {"kind": "binary", "frames": [0, 1], "files": ["avsbench/v1m/.../labels_rgb/0.png", ...]}}

Media and mask paths are relative to the data root. `masks` is present for the segmentation tasks: the
answer holds one mask-token group per frame, and group k is supervised by `files[i]` where
`frames[i] == k` ("binary": foreground = any non-black pixel; "semantic": AVSBench palette class ids).

Besides the tasks, the recipe's connector pre-training data: `caption` records ask for a plain
description of what is seen and heard over time in a clip, `caption_second` records (with `"second": k`)
what is seen, where, and heard in second k of a clip (its frame k and audio [k, k + 1) s), and carry
the same facts as `"labels": {"seen": [...], "heard": [...]}` for the encoders' pre-training objective.

`music_avqa_drill` and `ave_drill` records (`drill_records`, `ave_drill_records`, opt-in) are text only
(`"media": {}`): the task's question about a freshly sampled scene (no clip of any split), its true evidence as
`"given"` (teacher-forced, not supervised) and the answer. They teach the LLM to answer from evidence it reads,
which a small LLM trained from scratch does not learn from the task's few hundred clips (docs/training.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator, Sequence

from avbench.errors import AVBenchError, DataError, read_json
from avbench.registry import get_task
from avbench.task import load_samples
from avbench.tasks.arig import format_box
from avbench.tasks.avsbench import BinarySegmentationTask
from avbench.tasks.music_avqa import fill_question
from avbench.types import Sample

from . import MANIFEST, ave, common, music_avqa
from .scene import runs, segment_truth

#: Tasks exported, in this order; `caption` describes a whole clip, `caption_second` one second of it.
TASKS: tuple[str, ...] = ("ave", "avvp", "music_avqa", "arig", "s4", "ms3", "avss", "ref_avs")
CAPTION = "caption"
CAPTION_SECOND = "caption_second"
DRILL = "music_avqa_drill"
AVE_DRILL = "ave_drill"
#: A class's look and sound depend on its index in its data set's vocabulary, so a description names
#: the data set whose class names it uses (a task prompt implies it).
DATASET_NAMES = {"ave": "AVE", "avvp": "LLP", "music_avqa": "MUSIC-AVQA", "avsbench": "AVSBench", "ref_avs": "Ref-AVS"}
_CLIP_MEDIA = "This is a video:\n<video_start><video><video_end>\nThis is an audio:\n<audio_start><audio><audio_end>\n"
CAPTION_INSTRUCTIONS = {
    "spans": _CLIP_MEDIA + "Describe what can be seen and what can be heard in the video, and when (whole seconds, "
                           "end exclusive), with the {dataset} class names.",
    "seconds": _CLIP_MEDIA + "Describe, second by second, what can be seen and what can be heard in the video, with "
                             "the {dataset} class names.",
}
SECOND_INSTRUCTION = (
    "This is an image:\n<image_start><image><image_end>\n"
    "This is an audio:\n<audio_start><audio><audio_end>\n"
    "The image and the audio are one second of a clip from {dataset}. Which objects can be seen, and where, and which "
    "can be heard? Use the {dataset} class names."
)
LOUDNESS = {1: "soft", 2: "medium", 3: "loud"}
MASK_KINDS = {"s4": "binary", "ms3": "binary", "ref_avs": "binary", "avss": "semantic"}


def _spans(flags: Sequence[bool]) -> str:
    return ", ".join(f"{a}-{b}" for a, b in runs(list(flags)))


def describe_segments(segments: list[dict[str, Any]]) -> str:
    """"Seen: Bark 0-4, Cat 6-10. Heard: Bark 2-7." from per-segment truth (spans end-exclusive)."""
    parts = []
    for label, present in (("Seen", [{v["class"] for v in s["visible"]} for s in segments]),
                           ("Heard", [set(s["audible"]) for s in segments])):
        body = "; ".join(f"{name} {_spans([name in names for names in present])}" for name in sorted(set().union(*present)))
        parts.append(f"{label}: {body or 'nothing'}.")
    return " ".join(parts)


def describe_seconds(segments: list[dict[str, Any]]) -> str:
    """"Second 0: seen Bark; heard nothing. Second 1: seen Bark, Cat; heard Bark. ..." from per-segment truth:
    one line per second, so that the k-th line can read the k-th second's media tokens, where a span list
    asks the LLM to find each class's boundaries across all of them."""
    return " ".join(f"Second {k}: seen {', '.join(sorted({v['class'] for v in s['visible']})) or 'nothing'}; "
                    f"heard {', '.join(sorted(set(s['audible']))) or 'nothing'}." for k, s in enumerate(segments))


#: How clip-level evidence (AVE answers, whole-clip captions) is written: a span list per class, or a line per second.
EVIDENCE_STYLES = {"spans": describe_segments, "seconds": describe_seconds}


def _relative(path: str, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise DataError(f"media outside the data root {root}", path) from None


def _media(sample: Sample, root: Path) -> dict[str, Any]:
    return {k: ([_relative(p, root) for p in v] if isinstance(v, list) else _relative(v, root)) for k, v in sample.media.items()}


def _record(task: str, sample: Sample, root: Path, instruction: str, answer: str, masks: dict[str, Any] | None = None) -> dict[str, Any]:
    record = {"id": f"{task}/{sample.id}", "task": task, "split": sample.split, "media": _media(sample, root),
              "instruction": instruction, "answer": answer}
    if masks is not None:
        record["masks"] = masks
    return record


def _mask_spec(task: str, frames: list[int], files: list[str], root: Path) -> dict[str, Any]:
    return {"kind": MASK_KINDS[task], "frames": frames, "files": [_relative(f, root) for f in files]}


def _avqa_evidence(question: dict[str, Any]) -> str:
    seen = ", ".join(f"{cls} ({position})" for position, cls, _ in question["visual_view"]) or "no instrument"
    heard = ", ".join(
        f"{cls} ({LOUDNESS[level]}, {pattern + 1} beats a second, from second {onset})"
        for cls, pattern, onset, level in question["audio_view"]
    ) or "no instrument"
    return f"Seen from left to right: {seen}. Heard: {heard}."


def _avqa_answer(evidence: str, answer: str) -> str:
    """A MUSIC-AVQA answer: the evidence, then the tagged answer (task records and drills alike)."""
    return f"{evidence} So the answer is <answer>{answer}</answer>."


def text_only(prompt: str) -> str:
    """A task prompt without its media lines ("This is a video:" and the placeholder line after it)."""
    return re.sub(r"This is an? \w+:\n<\w+_start><\w+><\w+_end>\n", "", prompt)


def drill_records(seed: int, scenes: int, fourth_question: float = 0.5) -> Iterator[dict[str, Any]]:
    """Text-only MUSIC-AVQA records of `scenes` scenes sampled as the data set's clips are, from their own
    streams (seed, "music_avqa_drill", k): the question in the task's prompt without its media lines, the
    scene's true evidence as `given` and the answer after it."""
    task = get_task("music_avqa")
    for index in range(scenes):
        video = music_avqa.sample_video(common.rng_for(seed, DRILL, index), index, fourth_question)
        evidence = _avqa_evidence({"visual_view": music_avqa.visual_view(video.instruments),
                                   "audio_view": music_avqa.audio_view(video.instruments)})
        for k, question in enumerate(video.questions):
            sample = Sample(id=f"{index}/{k}", task="music_avqa", split="train", media={},
                            inputs={"question": fill_question(question.template, question.values)})
            yield {"id": f"{DRILL}/{index}/{k}", "task": DRILL, "split": "train", "media": {},
                   "instruction": text_only(task.build_prompt(sample)), "given": evidence,
                   "answer": _avqa_answer(evidence, question.answer)}


def _ave_answer(evidence: str, event: str, start: int, end: int) -> str:
    """An AVE answer: the evidence, then the tagged event (task records and drills alike)."""
    return f"{evidence} Both seen and heard: <event>{event}</event> <range>{start},{end}</range>."


def ave_drill_records(seed: int, scenes: int, evidence: str = "spans") -> Iterator[dict[str, Any]]:
    """Text-only AVE records of `scenes` scenes sampled as the data set's clips are, from their own streams
    (seed, "ave_drill", k): the task's prompt without its media lines, the scene's true evidence as `given`
    and the answer after it (the event and range where the seen and heard spans of one class overlap)."""
    instruction = text_only(get_task("ave").build_prompt(Sample(id="drill", task="ave", split="train", media={})))
    for index in range(scenes):
        label, start, end, objects = ave.sample_video(common.rng_for(seed, AVE_DRILL, index))
        given = EVIDENCE_STYLES[evidence](segment_truth(objects, ave.SEGMENTS))
        yield {"id": f"{AVE_DRILL}/{index}", "task": AVE_DRILL, "split": "train", "media": {},
               "instruction": instruction, "given": given, "answer": _ave_answer(given, label, start, end)}


def task_records(task_name: str, root: Path, split: str, truth: dict[str, Any],
                 evidence: str = "spans") -> Iterator[dict[str, Any]]:
    """The instruction records of one task's split, in the task's sample order (`evidence`: how AVE's is written)."""
    task = get_task(task_name)
    mask_text = BinarySegmentationTask.mask_text
    for sample in load_samples(task, root, split):
        prompt = task.build_prompt(sample)
        if task_name == "ave":
            t = sample.target
            yield _record(task_name, sample, root, prompt, _ave_answer(
                EVIDENCE_STYLES[evidence](truth["ave"]["videos"][sample.id]["segments"]), t["event"], t["start"], t["end"]))
        elif task_name == "avvp":
            events = truth["avvp"]["videos"][sample.id]["events"]
            tags = []
            for modality in ("audio", "visual"):
                by_class: dict[str, list[str]] = {}
                for name, onset, offset in events[modality]:
                    by_class.setdefault(name, []).append(f"({onset} {offset})")
                bodies = [f"{name}," + ",".join(spans) for name, spans in sorted(by_class.items())] or [""]
                tags.extend(f"<{modality}>{body}</{modality}>" for body in bodies)
            yield _record(task_name, sample, root, prompt, "The events are " + " and ".join(tags) + ".")
        elif task_name == "music_avqa":
            question = truth["music_avqa"]["questions"][sample.id]
            yield _record(task_name, sample, root, prompt,
                          _avqa_answer(_avqa_evidence(question), question["answer"]))
        elif task_name == "arig":
            # the coarse position first: a four-way choice the box's numbers then only refine
            box = sample.target["box"]
            yield _record(task_name, sample, root, prompt,
                          f"The sounding object is {sample.meta.get('a_obj', 'the object')}, at the "
                          f"{_where([box[0], box[1], box[2] + 1, box[3] + 1], 224, 2)}. Its coordinates are {format_box(box)}.")
        elif task_name in ("s4", "ms3"):
            t = sample.target
            names = " and ".join(t["category"].split("_"))
            n = len(sample.media["frames"])
            yield _record(task_name, sample, root, prompt, f"The sounding objects are {names}. {mask_text(n)}",
                          _mask_spec(task_name, list(t["mask_frames"]), list(t["masks"]), root))
        elif task_name == "avss":
            paths = sample.target["masks"]
            frames = [k for k, p in enumerate(paths) if p is not None]
            n = len(sample.media["frames"])
            names = " and ".join(sample.meta["a_obj"].split("_"))
            yield _record(task_name, sample, root, prompt, f"The sounding objects are {names}. {mask_text(n)}",
                          _mask_spec(task_name, frames, [paths[k] for k in frames], root))
        elif task_name == "ref_avs":
            # SynthAV's train split has null clips too, which the release's loader marks null only in test_n
            null = sample.target["null"] or truth["ref_avs"]["expressions"][sample.meta["uid"]]["referent"] is None
            text = task.answer_text(sample.inputs["expression"], None if null else sample.target["referent"],
                                    len(sample.media["frames"]))
            yield _record(task_name, sample, root, prompt, text,
                          _mask_spec(task_name, list(range(len(sample.target["masks"]))), list(sample.target["masks"]), root))
        else:
            raise ValueError(f"no instruction export for task {task_name!r}")


def _where(box: Sequence[int], side: int, columns: int) -> str:
    """Coarse position of a box's centre: a column (left/right, or left/middle/right) and top/bottom."""
    x = (box[0] + box[2]) / 2 / side
    y = (box[1] + box[3]) / 2 / side
    column = ("left", "right")[int(x >= 0.5)] if columns == 2 else ("left", "middle", "right")[min(2, int(x * 3))]
    return f"{('top', 'bottom')[int(y >= 0.5)]} {column}"


def box_224(box: Sequence[int], side: int) -> list[int]:
    """A scene box (end-exclusive pixels of a `side`-pixel frame) as ARIG writes boxes: inclusive pixel indices
    on the 224 x 224 image the model sees."""
    scale = 224 / side
    x0, y0, x1, y1 = box
    return [round(x0 * scale), round(y0 * scale), max(round(x0 * scale), round(x1 * scale) - 1),
            max(round(y0 * scale), round(y1 * scale) - 1)]


def describe_second(visible: list[dict[str, Any]], audible: list[str], side: int, columns: int) -> str:
    """"Seen: truck (bottom left) <obj>(30,127)(110,203)</obj>. Heard: truck." for one second: each visible
    object with its coarse position and its box in ARIG's form."""
    seen = ", ".join(f"{v['class']} ({_where(v['box'], side, columns)}) {format_box(box_224(v['box'], side))}"
                     for v in sorted(visible, key=lambda v: (v["box"][0], v["box"][1])))
    return f"Seen: {seen or 'nothing'}. Heard: {', '.join(sorted(set(audible))) or 'nothing'}."


def _clip_seconds(truth: dict[str, Any], split: str) -> Iterator[tuple[str, str, dict[str, Any], list[tuple[list, list]], int, int]]:
    """(data set, clip id, media, per second (visible, audible), frame side, columns) of every clip of `split`."""
    for dataset, columns in (("ave", 2), ("avvp", 2), ("music_avqa", 3)):
        for vid, video in sorted(truth[dataset]["videos"].items()):
            if video["split"] == split:
                media = {"video": f"{dataset}/videos/{vid}.mp4", "audio": f"{dataset}/audios/{vid}.wav"}
                seconds = [(s["visible"], s["audible"]) for s in video["segments"]]
                yield dataset, vid, media, seconds, 128, columns
    for uid, video in sorted(truth["avsbench"]["videos"].items()):
        if video["split"] == split:
            folder = f"avsbench/{video['subset']}/{uid}"
            media = {"frames": [f"{folder}/frames/{k}.jpg" for k in range(len(video["frames"]))], "audio": f"{folder}/audio.wav"}
            seconds = [([v for v in f["visible"]], f["sounding"]) for f in video["frames"]]
            yield "avsbench", uid, media, seconds, 224, 2
    for vid, clip in sorted(truth["ref_avs"]["clips"].items()):
        if clip["split"] == split:
            folder = f"ref_avs/media/{vid}"
            media = {"frames": [f"{folder}/frames/{k}.jpg" for k in range(len(clip["segments"]))], "audio": f"{folder}/audio.wav"}
            yield "ref_avs", vid, media, [(s["visible"], s["audible"]) for s in clip["segments"]], 224, 2


def caption_records(root: Path, split: str, truth: dict[str, Any], evidence: str = "spans") -> Iterator[dict[str, Any]]:
    """Connector pre-training data: one description per clip of AVE, AVVP and MUSIC-AVQA (what is seen and
    heard, when), and one per second of every clip (what is seen, where, and heard in that second;
    `"second": k` selects frame k and audio [k, k + 1) s of the clip's media)."""
    clips = list(_clip_seconds(truth, split))
    for dataset, vid, media, seconds, _, _ in clips:
        if dataset in ("ave", "avvp", "music_avqa"):
            segments = [{"visible": v, "audible": a} for v, a in seconds]
            yield {"id": f"{CAPTION}/{dataset}/{vid}", "task": CAPTION, "split": split, "media": media,
                   "instruction": CAPTION_INSTRUCTIONS[evidence].format(dataset=DATASET_NAMES[dataset]),
                   "answer": EVIDENCE_STYLES[evidence](segments)}
    for dataset, vid, media, seconds, side, columns in clips:
        for k, (visible, audible) in enumerate(seconds):
            name = DATASET_NAMES[dataset]
            # the same facts as labels, for the encoders' pre-training objective (docs/training.md)
            seen = sorted({f"{name}:{v['class']}" for v in visible} | {f"{name}:{v['class']}@{_where(v['box'], side, columns)}" for v in visible})
            yield {"id": f"{CAPTION_SECOND}/{dataset}/{vid}/{k}", "task": CAPTION_SECOND, "split": split, "media": media,
                   "second": k, "instruction": SECOND_INSTRUCTION.format(dataset=name),
                   "answer": describe_second(visible, audible, side, columns),
                   "labels": {"seen": seen, "heard": sorted({f"{name}:{a}" for a in audible})}}


def export_instructions(root: Path, out: Path, split: str = "train", tasks: Sequence[str] = TASKS,
                        captions: bool = True, drills: int = 0, drill_seed: int = 0, ave_drills: int = 0,
                        evidence: str = "spans") -> dict[str, int]:
    """Write the instruction records of `split` to `out` (JSONL), then those of `drills` MUSIC-AVQA and
    `ave_drills` AVE drill scenes; returns the count per task. `evidence` ("spans" or "seconds", EVIDENCE_STYLES)
    is how AVE answers and whole-clip captions write what is seen and heard when."""
    if evidence not in EVIDENCE_STYLES:
        raise AVBenchError(f"evidence must be one of {sorted(EVIDENCE_STYLES)}, got {evidence!r}")
    root = Path(root)
    truth = read_json(root / MANIFEST)
    counts: dict[str, int] = {}
    streams = [task_records(name, root, split, truth, evidence) for name in tasks]
    if captions:
        streams.insert(0, caption_records(root, split, truth, evidence))
    if drills:
        streams.append(drill_records(drill_seed, drills))
    if ave_drills:
        streams.append(ave_drill_records(drill_seed, ave_drills, evidence))
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="\n") as handle:
        for records in streams:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
                counts[record["task"]] = counts.get(record["task"], 0) + 1
    return counts
