"""Does a Crab-style model answer MUSIC-AVQA from its evidence? Its answers, teacher-forced on the true evidence.

    python tools/evidence_check.py                                   # bundled crab-tiny, SynthAV medium val
    python tools/evidence_check.py --checkpoint runs/x/final --split test --limit 0 --output check.json

Crab answers after explicit reasoning ("Seen from left to right: ... Heard: ... So the answer is
<answer>X</answer>."). Its score mixes two skills: perceiving (writing the right evidence) and reading
(answering from that evidence). This check isolates the second. For each question, the answer that
`avbench data instructions` writes, with the true evidence, is scored once per candidate X: every answer
that questions of the same template take in SynthAV (all splits). The candidate of highest likelihood is
the model's answer. A model that reads its own context answers these right whatever its perception is;
one that does not stays near the prior. docs/training.md has crab-tiny's numbers.

Accuracy is reported overall and per template (the placeholders kept, e.g. "Is there a <Object> sound?").
`--blank-media` zeroes the frames and the audio, to see what the answer owes to the media once the
evidence is given. Nothing is downloaded: the data is SynthAV, generated on first use.

`--names` checks the step before: does the LLM read an instrument's name off its media tokens? For single
seconds of MUSIC-AVQA clips (the `caption_second` records of the export: "Seen: cello (top left) <obj>...</obj>,
... Heard: saxophone."), the first seen and the first heard name are each scored once per instrument of
SynthAV's ten, the rest of the description kept true. A model that reads its media names them; one that
does not stays near one in ten.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Callable, Sequence

import torch

from avbench.adapters.crab.adapter import CrabAdapter, default_checkpoint
from avbench.adapters.crab.checkpoint import load_checkpoint
from avbench.adapters.crab.prompts import IGNORE_INDEX
from avbench.adapters.crab.training.data import ExampleBuilder, InstructionRecord, MediaCache, parse_record
from avbench.parsing import last_tag
from avbench.synthav import MANIFEST, ensure_synthav
from avbench.synthav.instruct import CAPTION_SECOND, caption_records, task_records
from avbench.synthav.music_avqa import INSTRUMENTS

#: (record, candidate answers) -> one log-likelihood per candidate
Scorer = Callable[[InstructionRecord, Sequence[str]], list[float]]
#: (record, candidate) -> the record whose answer states that candidate
Variant = Callable[[InstructionRecord, str], InstructionRecord]
#: The slots `--names` fills, as a pattern whose group 1 is the name.
NAME_SLOTS = {"first seen": re.compile(r"Seen: (\w+) \("), "first heard": re.compile(r"Heard: (\w+)")}


def answer_word(record: InstructionRecord) -> str:
    return last_tag(record.answer, ("answer",), "<answer>...</answer>").body


def with_answer(record: InstructionRecord, candidate: str) -> InstructionRecord:
    head, _, tail = record.answer.rpartition(f"<answer>{answer_word(record)}</answer>")
    return dataclasses.replace(record, id=f"{record.id}#{candidate}", answer=f"{head}<answer>{candidate}</answer>{tail}")


def questions(root: Path, split: str, limit: int) -> tuple[list[InstructionRecord], dict[str, str], dict[str, list[str]]]:
    """The split's MUSIC-AVQA records (at most `limit`, 0: all), each question's template, and each
    template's candidate answers (over every split, sorted)."""
    truth = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    known = truth["music_avqa"]["questions"]
    candidates: dict[str, set[str]] = defaultdict(set)
    for question in known.values():
        candidates[question["template"]].add(question["answer"])
    exported = itertools.islice(task_records("music_avqa", root, split, truth), limit or None)
    records = [parse_record(data, root, root / MANIFEST, line) for line, data in enumerate(exported, start=1)]
    template = {r.id: known[r.id.split("/", 1)[1]]["template"] for r in records}
    return records, template, {t: sorted(a) for t, a in candidates.items()}


def slot_of(record: InstructionRecord) -> str:
    return record.id.rsplit("#", 1)[1]


def named(record: InstructionRecord) -> str:
    """The name in a `--names` record's slot (its id ends in "#<slot>")."""
    return NAME_SLOTS[slot_of(record)].search(record.answer).group(1)


def with_name(record: InstructionRecord, candidate: str) -> InstructionRecord:
    start, end = NAME_SLOTS[slot_of(record)].search(record.answer).span(1)
    return dataclasses.replace(record, id=f"{record.id}={candidate}", answer=record.answer[:start] + candidate + record.answer[end:])


def name_slots(root: Path, split: str, limit: int) -> tuple[list[InstructionRecord], dict[str, str], dict[str, list[str]]]:
    """One record per filled slot of the split's MUSIC-AVQA single-second descriptions (at most `limit`
    seconds, 0: all), id suffixed "#<slot>"; each record's slot; the ten instruments as every slot's candidates."""
    truth = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    seconds = (d for d in caption_records(root, split, truth) if d["task"] == CAPTION_SECOND and "/music_avqa/" in d["id"])
    records, slot = [], {}
    for line, data in enumerate(itertools.islice(seconds, limit or None), start=1):
        record = parse_record(data, root, root / MANIFEST, line)
        for name, pattern in NAME_SLOTS.items():
            found = pattern.search(record.answer)
            if found and found.group(1) in INSTRUMENTS:
                records.append(dataclasses.replace(record, id=f"{record.id}#{name}"))
                slot[records[-1].id] = name
    return records, slot, {name: sorted(INSTRUMENTS) for name in NAME_SLOTS}


def model_scorer(checkpoint: Path, blank_media: bool, variant: Variant = with_answer) -> Scorer:
    """Log-likelihood of the whole answer (evidence, then the candidate) under the checkpoint, one forward
    per candidate (batch 1: the LM loss is then that answer's mean, without padding to undo); `variant`
    writes the candidate into the answer."""
    loaded = load_checkpoint(checkpoint)
    model = loaded.model.eval()
    builder = ExampleBuilder(loaded.tokenizer, model.config, MediaCache(CrabAdapter.media_spec))

    @torch.no_grad()
    def score(record: InstructionRecord, options: Sequence[str]) -> list[float]:
        out = []
        for option in options:
            inputs = builder.example(variant(record, option)).inputs
            if blank_media:
                inputs = dataclasses.replace(inputs, pixels=torch.zeros_like(inputs.pixels),
                                             segments=None if inputs.segments is None else torch.zeros_like(inputs.segments))
            labelled = sum(1 for t in inputs.labels if t != IGNORE_INDEX)
            out.append(-float(model(model.prepare_batch([inputs])).lm_loss) * labelled)
        return out

    return score


def check(records: Sequence[InstructionRecord], template: dict[str, str], candidates: dict[str, list[str]],
          score: Scorer, progress: Callable[[int, int], None] | None = None,
          truth: Callable[[InstructionRecord], str] = answer_word) -> dict:
    """Accuracy overall and per template (in %), with counts; the model's pick for every question. `truth`
    reads the right candidate off a record (default: its tagged answer)."""
    right: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    picks = {}
    for done, record in enumerate(records, start=1):
        options = candidates[template[record.id]]
        likelihood = score(record, options)
        pick = options[max(range(len(options)), key=likelihood.__getitem__)]
        picks[record.id] = pick
        for key in ("all", template[record.id]):
            right[key][0] += pick == truth(record)
            right[key][1] += 1
        if progress is not None:
            progress(done, len(records))
    return {"accuracy": {k: 100.0 * c / n for k, (c, n) in right.items()},
            "questions": {k: n for k, (_, n) in right.items()}, "picks": picks}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="model folder (default: the bundled crab-tiny)")
    parser.add_argument("--synthav-size", default="medium", help="SynthAV size (default medium)")
    parser.add_argument("--synthav-seed", type=int, default=0)
    parser.add_argument("--split", default="val", help="split whose questions are asked (default val)")
    parser.add_argument("--limit", type=int, default=200, help="first N questions of the split; 0: all (default 200)")
    parser.add_argument("--blank-media", action="store_true", help="zero the frames and the audio")
    parser.add_argument("--names", action="store_true",
                        help="instead: rank the first seen / heard instrument of single seconds (LIMIT counts seconds)")
    parser.add_argument("--output", type=Path, default=None, help="also write the result as JSON")
    args = parser.parse_args(argv)
    if args.limit < 0:
        parser.error("--limit must be 0 (all) or more")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    root = ensure_synthav(seed=args.synthav_seed, size=args.synthav_size, progress=print)
    if args.names:
        records, group, candidates = name_slots(root, args.split, args.limit)
        variant, truth, label = with_name, named, "slot"
    else:
        records, group, candidates = questions(root, args.split, args.limit)
        variant, truth, label = with_answer, answer_word, "template"
    score = model_scorer(args.checkpoint or default_checkpoint(), args.blank_media, variant)
    result = check(records, group, candidates, score,
                   lambda done, total: print(f"\r{done}/{total} records", end="", file=sys.stderr, flush=True), truth)
    print(file=sys.stderr)
    print(f"| records | accuracy (%) | {label} |\n|---|---|---|")
    for key in sorted(result["questions"], key=lambda k: (k != "all", -result["questions"][k], k)):
        print(f"| {result['questions'][key]} | {result['accuracy'][key]:.1f} | {key} |")
    if args.output is not None:
        args.output.write_text(json.dumps(result, indent=1, sort_keys=True), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
