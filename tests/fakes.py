"""A minimal task for testing the runner and CLI without the real task plugins or SynthAV.

Data: `<root>/fake/items.tsv`, one `id<TAB>answer` per line; the answer is one of ANSWERS.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from avbench.adapter import ModelAdapter
from avbench.errors import DataError, ParseError
from avbench.task import Task
from avbench.types import ModelOutput, Sample, ScoredSample

ANSWERS = ("red", "green", "blue")


class FakeTask(Task):
    name = "fake"
    family = "temporal"
    dataset_dir = "fake"
    splits = ("train", "test")
    primary_metric = "accuracy"
    table_metrics = ("accuracy",)
    description = "test-only colour naming"

    def load(self, data_root: Path, split: str) -> list[Sample]:
        path = Path(data_root) / "fake" / f"{split}.tsv"
        if not path.is_file():
            raise DataError("missing", path)
        samples = []
        for line, text in enumerate(path.read_text().splitlines(), start=1):
            sample_id, answer = text.split("\t")
            samples.append(Sample(sample_id, self.name, split, {"video": f"{sample_id}.mp4"}, {"q": "colour?"}, answer))
        return samples

    def build_prompt(self, sample: Sample) -> str:
        return f"What colour is {sample.id}? Answer in <answer></answer>."

    def parse(self, output: ModelOutput, sample: Sample) -> Any:
        match = re.search(r"<answer>\s*(\w+)\s*</answer>", output.text)
        if not match or match.group(1) not in ANSWERS:
            raise ParseError("no <answer> with a known colour")
        return {"answer": match.group(1)}

    def score(self, sample: Sample, parsed: Any | None) -> ScoredSample:
        correct = float(parsed is not None and parsed["answer"] == sample.target)
        return ScoredSample({"accuracy": 100.0 * correct}, correct)

    def aggregate(self, samples: Sequence[Sample], stats: Sequence[Any]) -> dict[str, float]:
        return {"accuracy": 100.0 * float(np.mean(stats))}

    def reference_output(self, sample: Sample) -> ModelOutput:
        return ModelOutput(f"It is clearly <answer>{sample.target}</answer>")

    def random_output(self, sample: Sample, rng: np.random.Generator) -> ModelOutput:
        return ModelOutput(f"<answer>{ANSWERS[rng.integers(len(ANSWERS))]}</answer>")

    def fit_prior(self, train_samples: Sequence[Sample]) -> Any:
        values, counts = np.unique([s.target for s in train_samples], return_counts=True)
        return str(values[np.argmax(counts)])

    def prior_output(self, prior: Any, sample: Sample) -> ModelOutput:
        return ModelOutput(f"<answer>{prior}</answer>")


class GarbageModel(ModelAdapter):
    """Emits text with no tags for every other sample."""

    name = "garbage"

    def predict(self, task, samples, prompts):
        return [ModelOutput("I cannot tell." if i % 2 else task.reference_output(s).text) for i, s in enumerate(samples)]


def write_fake_data(root: Path, n_test: int = 10, n_train: int = 6) -> Path:
    folder = root / "fake"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test.tsv").write_text("".join(f"t{i:03d}\t{ANSWERS[i % 3]}\n" for i in range(n_test)))
    (folder / "train.tsv").write_text("".join(f"r{i:03d}\t{ANSWERS[0 if i % 3 else 1]}\n" for i in range(n_train)))
    return root
