"""plan / apply / promote: what a change does to the steps and the wiring, before it lands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import regman
from regman.cli import app
from regman.errors import RevisionConflictError
from tests.conftest import EXAMPLES, snapshot

TRAINING = EXAMPLES / "training_pipeline"


def cli(*args: str, code: int | None = 0, input: str | None = None) -> Result:
    result = CliRunner().invoke(app, list(args), input=input)
    if code is not None:
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    return result


def plan_json(*args: str, code: int) -> dict[str, Any]:
    plan: dict[str, Any] = json.loads(cli("plan", *args, "--json", code=code).stdout)
    return plan


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    """A copy of the training pipeline's spec folder that a test may edit."""
    folder = tmp_path / "specs"
    shutil.copytree(TRAINING, folder)
    cli("import", "training", str(folder))
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def test_folder_equal_to_the_context_plans_nothing_and_applies_no_revision(
    pipeline: Path,
) -> None:
    plan = plan_json("training", str(pipeline), code=0)
    assert plan["changed"] is False
    assert plan["counts"] == {"created": 0, "updated": 0, "removed": 0, "unchanged": 9}
    cli("apply", "training", str(pipeline), "--yes")
    assert regman.RegistryManager().get_registry("training").revision == 1  # type: ignore[union-attr]


def test_plan_writes_nothing_and_exit_codes(pipeline: Path, isolated_store: Path) -> None:
    edit(pipeline / "training.step.yaml", "ml.m5.4xlarge", "ml.m5.12xlarge")
    before = snapshot(isolated_store)
    plan = plan_json("training", str(pipeline), code=1)
    assert snapshot(isolated_store) == before
    [updated] = [s for s in plan["steps"] if s["action"] == "updated"]
    assert updated["step"] == "training"
    assert updated["changes"] == [
        {"path": "compute.instance_type", "left": "ml.m5.4xlarge", "right": "ml.m5.12xlarge"}
    ]
    assert plan["wiring"]["edges_added"] == plan["wiring"]["edges_removed"] == []
    broken = pipeline / "bad.step.yaml"
    broken.write_text("step_type: [\n")
    assert "bad.step.yaml" in cli("plan", "training", str(pipeline), code=2).stderr
    cli("plan", "training", str(pipeline / "missing.step.yaml"), code=2)


def test_removing_a_consumed_output_shows_the_consumers(pipeline: Path) -> None:
    path = pipeline / "preprocessing_training.step.yaml"
    edit(path, "processed_data:", "renamed_output:")
    wiring = plan_json("training", str(pipeline), code=1)["wiring"]
    [broken] = [
        b for b in wiring["consumed_outputs_changed"] if b["provider"] == "preprocessing_training"
    ]
    assert broken["output"] == "processed_data"
    assert broken["change"] == "removed"
    assert broken["consumers"] == ["training.input_path"]


def test_a_required_dependency_nobody_provides_is_reported(pipeline: Path) -> None:
    edit(
        pipeline / "packaging.step.yaml",
        "  dependencies:\n",
        "  dependencies:\n    signing_key:\n      type: custom_property\n      required: true\n"
        "      semantic_keywords: [signing, key]\n",
    )
    wiring = plan_json("training", str(pipeline), code=1)["wiring"]
    assert wiring["newly_unresolved_required"] == ["packaging.signing_key"]


def test_removing_a_provider_repoints_or_loses_its_edges(pipeline: Path) -> None:
    (pipeline / "preprocessing_training.step.yaml").unlink()
    without_prune = plan_json("training", str(pipeline), code=0)
    assert without_prune["counts"]["removed"] == 0  # not in the sources: kept without --prune
    plan = plan_json("training", str(pipeline), "--prune", code=1)
    assert [s["step"] for s in plan["steps"] if s["action"] == "removed"] == [
        "preprocessing_training"
    ]
    wiring = plan["wiring"]
    assert {(e["consumer"], e["dependency"]) for e in wiring["edges_removed"]} == {
        ("preprocessing_training", "DATA"),
        ("preprocessing_training", "METADATA"),
    }
    assert wiring["edges_repointed"] == [
        {
            "consumer": "training",
            "dependency": "input_path",
            "old": "preprocessing_training.processed_data",
            "new": "preprocessing_calibration.processed_data",
        }
    ]
    text = cli("plan", "training", str(pipeline), "--prune", code=1).stdout
    assert "~ training.input_path: preprocessing_training.processed_data -> " in text


def test_apply_prune_lands_as_one_revision(pipeline: Path) -> None:
    (pipeline / "payload.step.yaml").unlink()
    edit(pipeline / "training.step.yaml", "ml.m5.4xlarge", "ml.m5.12xlarge")
    cli("apply", "training", str(pipeline), "--prune", "--yes", "-m", "tidy")
    registry = regman.RegistryManager().get_registry("training")
    assert registry is not None
    assert registry.revision == 2
    [record] = registry.history(limit=1)
    assert (record.command, record.message) == ("apply", "tidy")
    assert {s: c.kind for s, c in record.changes.items()} == {
        "payload": "removed",
        "training": "updated",
    }


def test_apply_refuses_off_a_terminal_and_a_stale_revision(
    pipeline: Path, isolated_store: Path
) -> None:
    edit(pipeline / "training.step.yaml", "ml.m5.4xlarge", "ml.m5.12xlarge")
    before = snapshot(isolated_store)
    assert "pass --yes" in cli("apply", "training", str(pipeline), code=1).stderr
    result = cli("apply", "training", str(pipeline), "--yes", "--if-revision", "7", code=1)
    assert "is at revision 1, not 7" in result.stderr
    assert snapshot(isolated_store) == before


def test_apply_with_an_invalid_file_changes_nothing(pipeline: Path, isolated_store: Path) -> None:
    edit(pipeline / "training.step.yaml", "ml.m5.4xlarge", "ml.m5.12xlarge")
    (pipeline / "zz_broken.step.yaml").write_text("step_type: X\nnode_type: nonsense\n")
    before = snapshot(isolated_store)
    cli("apply", "training", str(pipeline), "--yes", code=2)
    assert snapshot(isolated_store) == before


def test_promote_records_its_source_and_copies_named_steps() -> None:
    cli("import", "dev", str(EXAMPLES / "environments" / "dev"))
    cli("promote", "dev", "production", "training", "--yes")
    manager = regman.RegistryManager()
    production = manager.get_registry("production")
    assert production is not None
    assert production.list_step_names() == ["training"]
    assert production.get_specification("training") == manager.get_registry(  # type: ignore[union-attr]
        "dev"
    ).get_specification("training")
    history = json.loads(cli("history", "production", "--json").stdout)
    assert history[0]["command"] == "promote"
    assert history[0]["source"] == "dev@1"
    assert "promote (dev@1)" in cli("history", "production").stdout
    # promoting again changes nothing; a whole-context promotion with --prune equalises
    assert (
        "0 created, 0 updated, 0 removed, 1 unchanged"
        in cli("promote", "dev", "production", "training", "--yes").stdout
    )
    cli("promote", "dev@1", "production", "--prune", "--yes")
    assert production.list_step_names() == manager.get_registry("dev").list_step_names()  # type: ignore[union-attr]
    cli("promote", "dev", "production", "nope", "--yes", code=1)
    cli("promote", "dev", "production", "training", "--prune", "--yes", code=2)


def test_library_apply_refuses_when_the_context_moved_after_the_plan(
    manager: regman.RegistryManager,
) -> None:
    specs = {
        p.name.removesuffix(".step.yaml"): regman.load_spec_file(p)
        for p in sorted(TRAINING.glob("*.step.yaml"))
    }
    plan = manager.plan("training", specs)
    assert plan.base_revision == 0 and plan.counts()["created"] == 9
    manager.register_specs("training", {"payload": specs["payload"]})
    with pytest.raises(RevisionConflictError):
        manager.apply("training", specs, plan=plan)
    _, result = manager.apply("training", specs)
    assert result.changed and result.revision == 2
