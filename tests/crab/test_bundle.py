"""tools/bundle_crab_tiny.py: a run that started from another run's model is bundled with that run's record."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from avbench.adapters.crab.checkpoint import file_digest
from avbench.adapters.crab.training.recipe import load_config, to_dict

REPO = Path(__file__).parents[2]


@pytest.fixture()
def bundler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    spec = importlib.util.spec_from_file_location("bundle_crab_tiny", REPO / "tools" / "bundle_crab_tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "TARGET", tmp_path / "package" / "crab_tiny")
    monkeypatch.setattr(module, "FIGURES", tmp_path / "figures")
    monkeypatch.chdir(tmp_path)  # the recipes' output_dir and init_checkpoint are relative to the working folder
    return module


def _fake_run(config_name: str, weights: Path, loss: float, source: dict | None = None) -> Path:
    """A finished run of a shipped recipe: its recorded recipe, a log of 25 steps a stage, final weights."""
    config = load_config(REPO / "configs" / f"{config_name}.yaml")
    run = Path(config.output_dir)
    run.mkdir(parents=True)
    (run / "train_config.json").write_text(json.dumps(to_dict(config)))
    log = [{"step": 0, "stage": stage.name, "loss": loss - k / 100, "seconds": 2.0 * (k + 1)}
           for stage in config.stages for k in range(25)]
    (run / "train_log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))
    (run / "source.json").write_text(json.dumps({"starts": [{"global_step": 0, "git_revision": source["rev"],
                                                              "tracked_changes": False}]}))
    shutil.copytree(weights, run / "final")
    (run / "loss_curve.png").write_bytes(config_name.encode())
    return run


def test_a_polished_run_is_bundled_with_its_base_runs(bundler, tiny_checkpoint: Path, tmp_path: Path) -> None:
    base = _fake_run("crab-tiny-seconds", tiny_checkpoint, 5.0, {"rev": "a" * 40})
    polish = _fake_run("crab-tiny-polish", tiny_checkpoint, 2.0, {"rev": "b" * 40})
    run = _fake_run("crab-tiny", tiny_checkpoint, 1.0, {"rev": "c" * 40})
    assert base == Path("runs/crab-tiny-seconds")  # where configs/crab-tiny-polish.yaml's init_checkpoint points
    assert bundler.lineage(run) == [base, polish, run]
    assert [bundler.shipped_config(r) for r in (base, polish, run)] == [
        Path("configs/crab-tiny-seconds.yaml"), Path("configs/crab-tiny-polish.yaml"), Path("configs/crab-tiny.yaml")]
    bundler.main(run)
    target = tmp_path / "package" / "crab_tiny"
    provenance = (target / "PROVENANCE.md").read_text()
    assert ("avbench train --config configs/crab-tiny-seconds.yaml\navbench train --config configs/crab-tiny-polish.yaml\n"
            "avbench train --config configs/crab-tiny.yaml\n") in provenance
    assert "`aaaaaaa`" in provenance and "`bbbbbbb`" in provenance and "`ccccccc`" in provenance
    assert f"sha256 prefix `{file_digest([target / 'model.safetensors'])}`" in provenance
    # 4 + 1 + 1 stages of 25 steps, 50 seconds each; the loss of the first and the last 20 steps
    assert "Training time: 5.0 minutes" in provenance
    assert "| crab-tiny-polish | polish | answer, keeps 0.5 | 120 x 16 | 50 | 1.905 | 1.855 |" in provenance
    assert "| crab-tiny-seconds | encoders | encoders | 1000 x 64 | 50 | 4.905 | 4.855 |" in provenance
    assert "| crab-tiny | segmentation | answer | 120 x 8 | 50 | 0.905 | 0.855 |" in provenance
    for name in ("crab-tiny-seconds", "crab-tiny-polish", "crab-tiny"):
        assert (tmp_path / "figures" / f"{name}-loss.png").read_bytes() == name.encode()


def test_a_run_of_no_shipped_recipe_is_refused(bundler, tiny_checkpoint: Path) -> None:
    run = _fake_run("crab-tiny-seconds", tiny_checkpoint, 5.0, {"rev": "a" * 40})
    recorded = json.loads((run / "train_config.json").read_text())
    recorded["stages"][0]["lr"] = 0.5
    (run / "train_config.json").write_text(json.dumps(recorded))
    with pytest.raises(SystemExit, match="matches none of configs"):
        bundler.shipped_config(run)
