"""Data-parallel `avbench run` (torchrun, 2 CPU processes on gloo) gives what one process gives, resumes what
killed runs of any world size left, and stops every rank when one fails.

One torchrun launch (tests/dist_runs.py) runs every 2-rank command line: each launch costs seconds of
start-up and imports, so the fixtures prepare all folders first and the tests read what it left.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from avbench.cli import app
from avbench.sharding import fold_rank_files, rank_file, rank_files, shard

TESTS = Path(__file__).resolve().parent
#: The runs compared between one process and two ranks.
NAMES = ("random", "prior", "crab", "crab-media-skip")
BROKEN_SAMPLE = "VfHGxzyGyl5"  # the second AVE test sample of SynthAV tiny: rank 1's share of two


def _run_args(name: str, out: Path, inputs: dict[str, Path]) -> list[str]:
    """The `avbench run` command line of run `name`, into `out`."""
    crab = ["--model", "crab", "--checkpoint", str(inputs["checkpoint"])]
    args = {
        "random": ["--model", "random", "--seed", "3", "--tasks", "all", "--synthav-size", "tiny"],
        "prior": ["--model", "prior", "--tasks", "all", "--synthav-size", "tiny"],
        # video + audio, a question, masks
        "crab": [*crab, "--tasks", "ave,music_avqa,s4", "--limit", "2", "--max-new-tokens", "8", "--synthav-size", "tiny"],
        # BROKEN_SAMPLE's video does not decode: recorded as a media failure
        "crab-media-skip": [*crab, "--tasks", "ave", "--data-root", str(inputs["broken"]), "--max-new-tokens", "4",
                            "--on-error", "skip"],
    }[name]
    return ["run", *args, "--bootstrap", "20", "--output-dir", str(out)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _comparable(folder: Path) -> dict[str, Any]:
    """results.json without what differs between any two runs: creation time, seconds, output folder."""
    results = json.loads((folder / "results.json").read_text())
    results.pop("created")
    results["config"].pop("output_dir")
    for entry in results["tasks"].values():
        entry.pop("seconds")
    return results


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.jsonl"))}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """SynthAV tiny (in the session's cache), a random crab-tiny checkpoint, and a copy of SynthAV's AVE
    whose second test video is garbage."""
    from avbench.adapters.crab.checkpoint import write_random_checkpoint
    from avbench.synthav import ensure_synthav

    root = ensure_synthav(seed=0, size="tiny")
    base = tmp_path_factory.mktemp("dist-inputs")
    broken = base / "broken"
    shutil.copytree(root / "ave", broken / "ave")
    (broken / "ave" / "videos" / f"{BROKEN_SAMPLE}.mp4").write_bytes(b"not a video")
    return {"checkpoint": write_random_checkpoint(base / "crab", "tiny", seed=0), "broken": broken}


@pytest.fixture(scope="module")
def single(inputs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The one-process runs (in this process, through the CLI)."""
    base = tmp_path_factory.mktemp("one-process")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name in NAMES:
            result = CliRunner().invoke(app, _run_args(name, base / name, inputs))
            assert result.exit_code == 0, result.output
    finally:
        torch.set_num_threads(previous)
    return {name: base / name for name in NAMES}


def _killed(reference: Path, folder: Path, world_size: int) -> dict[str, str]:
    """`folder` as a `world_size`-rank run of `reference`'s command leaves it when killed: some tasks done (folded),
    the others in rank files holding part of each rank's share, one rank's last line torn. The lines a
    rank wrote are the reference's lines (records are deterministic); each kept line gets a `"kept": true`
    key, which survives only if the resumed run does not predict that sample again. Returns the kept ids
    by task file."""
    folder.mkdir(parents=True)
    shutil.copy(reference / "run.json", folder / "run.json")
    kept: dict[str, str] = {}
    for index, path in enumerate(sorted(reference.glob("*.jsonl"))):
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        if index % 3 == 0:  # a finished task, except that one sample's media failed (a re-run retries it)
            failed = {**lines[-1], "parsed": None, "parse_status": "failed", "error_kind": "media",
                      "parse_error": "media error: video.mp4: cannot decode video", "raw_output": ""}
            lines[0] = {**lines[0], "kept": True}
            kept[path.name] = lines[0]["id"]
            (folder / path.name).write_text("".join(json.dumps(x) + "\n" for x in lines[:-1] + [failed]))
            continue
        for rank in range(world_size):
            share = shard(lines, rank, world_size)[: max(1, len(lines) // (2 * world_size))]
            if rank == 0:
                share[0] = {**share[0], "kept": True}
                kept[path.name] = share[0]["id"]
            text = "".join(json.dumps(x) + "\n" for x in share)
            if rank == world_size - 1:
                text = text[: len(text) - 20]  # killed while writing its last line
            rank_file(folder / path.name, rank, world_size).write_text(text)
    return kept


@pytest.fixture(scope="module")
def killed(single: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, str]]]:
    base = tmp_path_factory.mktemp("killed")
    return {
        "3-ranks": (base / "3-ranks", _killed(single["random"], base / "3-ranks", 3)),  # resumed by 2 ranks
        "2-ranks": (base / "2-ranks", _killed(single["random"], base / "2-ranks", 2)),  # resumed by 1 process
    }


@pytest.fixture(scope="module")
def parallel(inputs: dict[str, Path], killed: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One 2-rank launch: every run of `single` afresh, the resume of a killed 3-rank run, then two runs
    that must fail: one refused on rank 0 (another seed into a used folder), one whose rank 1 meets an
    undecodable video under --on-error raise."""
    base = tmp_path_factory.mktemp("two-ranks")
    commands = [_run_args(name, base / name, inputs) for name in NAMES]
    commands.append(_run_args("random", killed["3-ranks"][0], inputs))
    commands.append(_run_args("random", base / "random", inputs) + ["--seed", "4"])  # the last --seed counts
    commands.append(["raise" if arg == "skip" else arg for arg in _run_args("crab-media-skip", base / "crab-raise", inputs)])
    launch = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
         str(TESTS / "dist_runs.py"), json.dumps(commands)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return {"folders": {name: base / name for name in NAMES}, "output": launch.stdout + launch.stderr,
            "returncode": launch.returncode}


@pytest.mark.parametrize("name", NAMES)
def test_two_ranks_give_the_one_process_results_and_files(name: str, single: dict, parallel: dict) -> None:
    assert "exit codes: [0, 0, 0, 0, 0, 2, 2]" in parallel["output"], parallel["output"][-3000:]
    one, two = single[name], parallel["folders"][name]
    assert _comparable(two) == _comparable(one)
    assert _files(two) == _files(one)  # merged in sample order: byte for byte the one-process files
    assert (two / "run.json").read_bytes() == (one / "run.json").read_bytes()
    assert not list(two.glob("*.rank*"))  # the per-rank files are folded away
    if name == "crab-media-skip":
        assert json.loads((two / "results.json").read_text())["tasks"]["ave"]["n_media_errors"] == 1


def test_only_rank_0_prints_results(parallel: dict) -> None:
    output = parallel["output"]
    assert output.count("predictions and results in") == 5  # the five runs that succeed, once each
    assert output.count("family score = mean of the family's primary metrics") == 5  # one table each
    # progress bars (their final state when not on a terminal): rank 0's share only, once per run that reached a task
    assert "rank 1 of 2" not in output and output.count("ave (rank 0 of 2)") == 6


def test_a_failure_on_one_rank_stops_every_rank_with_its_reason(parallel: dict) -> None:
    lines = parallel["output"].splitlines()
    refusal = "holds a run of {'model': 'random', 'seed': 3, 'model_options': {}} but this run is"
    media = f"{BROKEN_SAMPLE}.mp4: cannot decode video"
    # the failing rank prints its error; the other one says it stops, and why
    for failing, stopping, reason in ((0, 1, refusal), (1, 0, media)):
        assert any(line.startswith("error: ") and "stops" not in line and reason in line for line in lines), reason
        prefix = f"error: rank {stopping} stops: rank {failing}" + (" failed: " if failing == 0 else ": ")
        assert any(line.startswith(prefix) and reason in line for line in lines), prefix
    assert parallel["returncode"] == 0  # the driver itself finished: the failures did not break the process group


@pytest.mark.parametrize("state, resumed_by", [("3-ranks", "two ranks"), ("2-ranks", "one process")])
def test_a_killed_run_resumes_with_any_world_size(state: str, resumed_by: str, inputs: dict, single: dict, killed: dict,
                                                  parallel: dict) -> None:
    folder, kept = killed[state]
    if resumed_by == "one process":
        result = CliRunner().invoke(app, _run_args("random", folder, inputs))
        assert result.exit_code == 0, result.output
    assert _comparable(folder) == _comparable(single["random"])
    assert not list(folder.glob("*.rank*"))
    reference = _files(single["random"])
    assert sorted(_files(folder)) == sorted(reference)
    for name, content in _files(folder).items():
        lines = [json.loads(line) for line in content.decode().splitlines()]
        expected = [json.loads(line) for line in reference[name].decode().splitlines()]
        assert [x["id"] for x in lines if x.pop("kept", False)] == [kept[name]], name  # not predicted again
        if resumed_by == "two ranks":  # the last fold writes sample order; one process appends what it adds
            assert lines == expected, name
        else:
            assert sorted(lines, key=lambda x: x["id"]) == sorted(expected, key=lambda x: x["id"]), name


def test_fold_prefers_a_retried_line_keeps_sample_order_and_deletes_rank_files(tmp_path: Path) -> None:
    path = tmp_path / "t_test.jsonl"
    line = lambda i, **kw: json.dumps({"id": i, "raw_output": i, **kw}) + "\n"  # noqa: E731
    path.write_text(line("old") + line("b", error_kind="media"))  # "old": an earlier run's larger --limit
    rank_file(path, 1, 2).write_text(line("b") + line("d") + '{"id": "x", "raw')  # torn: x is redone
    rank_file(path, 0, 2).write_text(line("a") + line("c"))
    assert [p.name for p in rank_files(path)] == ["t_test.rank0-of-2.jsonl", "t_test.rank1-of-2.jsonl"]
    assert fold_rank_files(path, ["a", "b", "c", "d", "x"]) == 2
    assert [json.loads(x) for x in path.read_text().splitlines()] == [
        {"id": i, "raw_output": i} for i in ("a", "b", "c", "d", "old")]
    assert rank_files(path) == [] and fold_rank_files(path, ["a"]) == 0
    assert shard(list("abcde"), 1, 2) == ["b", "d"] and shard(list("abcde"), 0, 3) == ["a", "d"]


def test_each_rank_gets_its_own_gpu_for_auto_and_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    from avbench.adapters.crab.adapter import resolve_device
    from avbench.errors import AVBenchError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda")  # one process: as before
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("auto") == resolve_device("cuda") == torch.device("cuda", 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)  # an explicit GPU is every rank's
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(AVBenchError, match="LOCAL_RANK 2.*only 2 CUDA device"):
        resolve_device("cuda")
