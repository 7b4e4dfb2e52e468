"""`avbench-crab` as an lm-evaluation-harness model type: its numbers are the model's own, and lm-eval runs a
local task through it, from Python and from lm-eval's command line (`python -m avbench.lm_eval`).

The task is written into a temporary folder at test time: a four-question JSONL file read by HF datasets'
`json` builder, offline, and two task YAMLs (multiple choice, generation) found through `--include_path`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch
import torch.nn.functional as F

DOCS = [
    {"question": "Which animal barks?", "choices": ["dog", "cat", "cow"], "label": 0},
    {"question": "Which instrument has strings?", "choices": ["drum", "violin", "flute"], "label": 1},
    {"question": "What do you hear from a bell?", "choices": ["silence", "a light", "a ring"], "label": 2},
    {"question": "Is fire hot?", "choices": ["yes", "no"], "label": 0},
]
PROMPT = "Question: {question}\nAnswer:"
TASK_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {docs}
test_split: test
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
metadata:
  version: 1.0
"""
MC_YAML = """output_type: multiple_choice
doc_to_choice: "{{choices}}"
doc_to_target: label
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""
GEN_YAML = """output_type: generate_until
doc_to_target: "{{choices[label]}}"
generation_kwargs:
  until: [".", "\\n"]
  max_gen_toks: 6
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """No hub access and a private datasets cache, here and in subprocesses (set before `datasets` is imported)."""
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path_factory.mktemp("hf-datasets"))}
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lm-eval-tasks")
    docs = folder / "docs.jsonl"
    docs.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    for name, body in (("avtiny_mc", MC_YAML), ("avtiny_gen", GEN_YAML)):
        (folder / f"{name}.yaml").write_text(TASK_YAML.format(name=name, docs=docs) + body)
    return folder


@pytest.fixture(scope="module")
def crab_lm(offline: dict, tiny_checkpoint: Path):
    from avbench.adapters.crab.lm_eval_model import CrabLM

    return CrabLM(checkpoint=str(tiny_checkpoint), device="cpu", batch_size=3)


def _request(kind: str, *args: Any):
    from lm_eval.api.instance import Instance

    return Instance(kind, {}, tuple(args), 0)


def _direct_logprobs(lm: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    """log-softmax of the next token after each position of `ids`, one unpadded forward."""
    with torch.inference_mode():
        return F.log_softmax(lm(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)


def test_loglikelihood_is_the_sum_of_the_models_log_softmax_with_i_lora_routing(crab_lm, tiny_crab) -> None:
    from avbench.adapters.crab.ilora import ilora_layers, record_router_weights

    tokenizer, lm = tiny_crab.tokenizer, tiny_crab.model.causal_lm
    pairs = [("Question: Which animal barks?\nAnswer:", " dog"), ("The event is", " Church bell"),
             ("A short context ", "moves its space"), ("", "left right middle")]
    with record_router_weights(crab_lm.lm) as routers:
        got = crab_lm.loglikelihood([_request("loglikelihood", c, x) for c, x in pairs])
        # the routers ran on the text tokens: every I-LoRA layer, a softmax over its heads per token
        assert len(routers) == len(ilora_layers(crab_lm.lm)) > 0
        assert all(torch.allclose(w.sum(-1), torch.ones(())) for w in routers.values())
    for (context, continuation), (logprob, greedy) in zip(pairs, got):
        if context:  # lm-eval's rule: trailing spaces move to the continuation, the whole is encoded, then split
            stripped = context.rstrip()
            continuation = context[len(stripped):] + continuation
            whole = tokenizer(stripped + continuation, add_special_tokens=False)["input_ids"]
            n_context = len(tokenizer(stripped, add_special_tokens=False)["input_ids"])
        else:  # an empty context is the prefix token (crab-tiny's tokenizer adds no BOS of its own)
            whole = [tokenizer.bos_token_id] + tokenizer(continuation, add_special_tokens=False)["input_ids"]
            n_context = 1
        logprobs = _direct_logprobs(lm, whole)
        expected = sum(float(logprobs[i - 1, whole[i]]) for i in range(n_context, len(whole)))
        assert logprob == pytest.approx(expected, rel=1e-5, abs=1e-4)
        assert greedy is False or all(int(logprobs[i - 1].argmax()) == whole[i] for i in range(n_context, len(whole)))
    # is_greedy: true exactly for the argmax token
    context = tokenizer("The answer is", add_special_tokens=False)["input_ids"]
    best = int(_direct_logprobs(lm, context)[-1].argmax())
    [(_, is_best), (_, is_other)] = crab_lm._loglikelihood_tokens([(None, context, [best]), (None, context, [(best + 1) % 100])])
    assert (is_best, is_other) == (True, False)


def test_rolling_loglikelihood_scores_every_token_after_the_prefix_token(crab_lm, tiny_crab) -> None:
    text = "The event is Church bell and the time range is zero to ten."
    ids = [tiny_crab.tokenizer.bos_token_id] + tiny_crab.tokenizer(text, add_special_tokens=False)["input_ids"]
    logprobs = _direct_logprobs(tiny_crab.model.causal_lm, ids)
    expected = sum(float(logprobs[i - 1, ids[i]]) for i in range(1, len(ids)))
    [got] = crab_lm.loglikelihood_rolling([_request("loglikelihood_rolling", text)])
    assert got == pytest.approx(expected, rel=1e-5)


def test_generate_until_is_the_models_greedy_decode_cut_at_until(crab_lm, tiny_crab) -> None:
    from avbench.adapters.crab.generation import greedy_generate, left_pad

    model, tokenizer = tiny_crab.model, tiny_crab.tokenizer
    contexts = ["Question: Which animal barks?\nAnswer:", "The event is", "Please answer this question: is fire hot?"]

    def own_greedy(context: str, steps: int) -> str:  # avbench's own decoding loop, one row, no padding
        ids = torch.tensor(tokenizer(context, add_special_tokens=False)["input_ids"])
        pad = model.embed_tokens(torch.tensor([model.token_ids.pad]))[0]
        out = greedy_generate(model.causal_lm, left_pad([model.embed_tokens(ids)], pad), steps, model.token_ids.eos,
                              model.token_ids.pad)
        assert len(out.tokens[0]) == steps  # a random model: no EOS this early
        return tokenizer.decode(out.tokens[0], skip_special_tokens=True)

    full = [own_greedy(c, 10) for c in contexts]
    # batched with left padding, only EOS to stop: exactly the model's own greedy text, max_gen_toks tokens of it
    assert crab_lm.generate_until([_request("generate_until", c, {"until": [], "max_gen_toks": 10}) for c in contexts]) == full
    # a stop string taken from inside each continuation: the text is cut before it
    stops = [text[len(text) // 2 : len(text) // 2 + 2] for text in full]
    got = crab_lm.generate_until([_request("generate_until", c, {"until": [s], "max_gen_toks": 10}) for c, s in zip(contexts, stops)])
    assert got == [text.split(stop)[0] for text, stop in zip(full, stops)]
    assert all(len(g) < len(f) for g, f in zip(got, full))


@pytest.fixture(scope="module")
def by_hand(crab_lm) -> dict[str, float]:
    """The tasks' metrics computed from the model type's own answers, without lm-eval's evaluator."""
    questions = [PROMPT.format(**d) for d in DOCS]
    correct = 0
    for doc, question in zip(DOCS, questions):
        scores = [ll for ll, _ in crab_lm.loglikelihood([_request("loglikelihood", question, " " + c) for c in doc["choices"]])]
        correct += max(range(len(scores)), key=lambda i: (scores[i], -i)) == doc["label"]
    answers = crab_lm.generate_until([_request("generate_until", q, {"until": [".", "\n"], "max_gen_toks": 6}) for q in questions])
    exact = sum(a == d["choices"][d["label"]] for a, d in zip(answers, DOCS))  # lm-eval compares unstripped
    return {"acc": correct / len(DOCS), "exact_match": exact / len(DOCS)}


def test_simple_evaluate_runs_a_local_task_through_the_model_type(task_dir: Path, tiny_checkpoint: Path, by_hand: dict) -> None:
    import lm_eval
    from lm_eval.tasks import TaskManager

    import avbench.adapters.crab.lm_eval_model  # noqa: F401  registers "avbench-crab"

    results = lm_eval.simple_evaluate(
        model="avbench-crab", model_args={"checkpoint": str(tiny_checkpoint)}, device="cpu", batch_size=2,
        tasks=["avtiny_mc", "avtiny_gen"], task_manager=TaskManager(include_path=str(task_dir), include_defaults=False),  # no index of lm-eval's own tasks (8 s)
    )
    assert results["results"]["avtiny_mc"]["acc,none"] == pytest.approx(by_hand["acc"])
    assert results["results"]["avtiny_gen"]["exact_match,none"] == pytest.approx(by_hand["exact_match"])
    assert results["n-samples"]["avtiny_mc"] == {"original": 4, "effective": 4}
    assert results["config"]["model"] == "avbench-crab"


def test_lm_evals_command_line_runs_the_model_type(task_dir: Path, tiny_checkpoint: Path, by_hand: dict, offline: dict,
                                                   tmp_path: Path) -> None:
    command = [sys.executable, "-m", "avbench.lm_eval", "--model", "avbench-crab", "--model_args", f"checkpoint={tiny_checkpoint}",
               "--tasks", "avtiny_mc", "--include_path", str(task_dir), "--device", "cpu", "--output_path", str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, **offline, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    [written] = list((tmp_path / "out").rglob("results_*.json"))
    results = json.loads(written.read_text())
    assert results["results"]["avtiny_mc"]["acc,none"] == pytest.approx(by_hand["acc"])
    assert results["config"]["model_args"] == {"checkpoint": str(tiny_checkpoint)}
    assert "|avtiny_mc|" in done.stdout  # lm-eval's own summary table


def test_avbench_results_carry_lm_evals_layout_for_its_tools(synthav_tiny: Path, tmp_path: Path) -> None:
    """results.json repeats its numbers under lm-eval's top-level keys, so lm-eval's own table reads it."""
    from lm_eval.utils import make_table
    from typer.testing import CliRunner

    from avbench.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--model", "random", "--tasks", "ave,arig", "--synthav-size", "tiny", "--limit", "3",
                                      "--bootstrap", "0", "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    ave, arig = results["tasks"]["ave"], results["tasks"]["arig"]
    assert results["results"]["ave"] == {"alias": "ave", "accuracy,none": ave["metrics"]["accuracy"]}
    assert results["results"]["arig"] == {"alias": "arig", **{f"{m},none": v for m, v in arig["metrics"].items()}}
    assert results["versions"] == {"ave": ave["task_version"], "arig": arig["task_version"]}
    assert results["n-samples"]["ave"] == {"original": ave["data_version"]["n_samples"], "effective": 2}  # tiny: 2 < 3
    assert results["n-samples"]["arig"] == {"original": arig["data_version"]["n_samples"], "effective": 3}
    assert results["higher_is_better"]["ave"] == {"accuracy": True}
    assert results["n-shot"] == {"ave": 0, "arig": 0} and results["git_hash"] == results["environment"]["git_revision"]
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in make_table(results).splitlines()]
    [ave_row] = [row for row in rows if row[0] == "ave"]  # task, version, filter, n-shot, metric, ↑, value, ...
    assert ave_row[1:6] == [ave["task_version"], "none", "0", "accuracy", "↑"]
    assert float(ave_row[6]) == pytest.approx(ave["metrics"]["accuracy"], abs=1e-3)
