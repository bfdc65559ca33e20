"""Every command, option and error path, through CliRunner on a temporary store."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import regman
from regman.cli import render
from tests.cli.conftest import TRAINING, Run
from tests.conftest import EXAMPLES, snapshot

TRAINING_SPEC = str(TRAINING / "training.step.yaml")
PREPROCESS_SPEC = str(TRAINING / "preprocessing_training.step.yaml")


def register_examples(run: Run) -> None:
    run("import", "training_pipeline", *map(str, sorted(TRAINING.glob("*.step.yaml"))))
    run("import", "dev", *map(str, sorted((EXAMPLES / "environments/dev").glob("*.yaml"))))


def test_version(run: Run) -> None:
    result = run("--version")
    assert result.stdout.strip() == f"regman {regman.__version__}"


def test_no_args_shows_help(run: Run) -> None:
    result = run(code=None)
    assert result.exit_code in (0, 2)
    assert "contexts" in result.output and "register" in result.output


def test_register_created_updated_unchanged(run: Run, isolated_store: Path) -> None:
    result = run("register", "training_pipeline", "training", TRAINING_SPEC)
    assert "created" in result.stderr
    assert run("register", "training_pipeline", "training", TRAINING_SPEC).stderr.startswith(
        "unchanged"
    )
    result = run("register", "training_pipeline", "training", PREPROCESS_SPEC, "--json")
    assert json.loads(result.stdout) == {
        "context": "training_pipeline",
        "step": "training",
        "outcome": "updated",
        "revision": 2,
        "dry_run": False,
    }
    stored = regman.RegistryManager(isolated_store).get_registry("training_pipeline")
    assert stored.get_specification("training").step_type == "TabularPreprocessing"  # type: ignore[union-attr]


def test_register_no_replace_refuses(
    run: Run, store_snapshot: Callable[[], dict[str, bytes | None]]
) -> None:
    run("register", "ctx", "training", TRAINING_SPEC)
    before = store_snapshot()
    result = run("register", "ctx", "training", PREPROCESS_SPEC, "--no-replace", code=1)
    assert result.stderr.startswith("error: step 'training' is already registered")
    assert store_snapshot() == before
    # the same spec again is not a conflict
    run("register", "ctx", "training", TRAINING_SPEC, "--no-replace")


def test_register_dry_run_writes_nothing(run: Run, isolated_store: Path) -> None:
    result = run("register", "ctx", "training", TRAINING_SPEC, "--dry-run", "--json")
    assert json.loads(result.stdout)["outcome"] == "created"
    assert not (isolated_store / "contexts").exists()
    run("register", "ctx", "training", TRAINING_SPEC)
    before = snapshot(isolated_store)
    result = run("register", "ctx", "training", PREPROCESS_SPEC, "--dry-run")
    assert "would be updated" in result.stderr
    assert snapshot(isolated_store) == before
    run("register", "ctx", "training", PREPROCESS_SPEC, "--dry-run", "--no-replace", code=1)


def test_register_from_stdin(run: Run) -> None:
    text = Path(TRAINING_SPEC).read_text()
    run("register", "ctx", "training", "-", input=text)
    assert "XGBoostTraining" in run("show", "ctx", "training").stdout
    result = run("register", "ctx", "other", "-", input="step_type: [\n", code=2)
    assert result.stderr.startswith("error: invalid YAML")
    assert "(<stdin>:" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["register", "ctx", "s", "/no/such/file.yaml"], 2, "no such file"),
        (["register", "../evil", "s", TRAINING_SPEC], 2, "invalid context name"),
        (["register", "ctx", "a/b", TRAINING_SPEC], 2, "invalid step name"),
        (["register", "ctx", "CON", TRAINING_SPEC], 2, "reserved on Windows"),
        (["show", "ctx", "missing"], 1, "does not exist"),
        (["remove", "ctx", "missing"], 1, "does not exist"),
        (["contexts", "show", "missing"], 1, "does not exist"),
        (["stats", "missing"], 1, "does not exist"),
        (["clear", "missing", "--yes"], 1, "does not exist"),
        (["restore", "missing"], 1, "has nothing to restore"),
    ],
)
def test_errors_are_one_line_and_change_nothing(
    run: Run, isolated_store: Path, args: list[str], code: int, needle: str
) -> None:
    before = snapshot(isolated_store)
    result = run(*args, code=code)
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: ") and needle in first, result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("error")]) == 1
    assert snapshot(isolated_store) == before


def test_invalid_spec_names_file_line_column(
    run: Run, tmp_path: Path, isolated_store: Path
) -> None:
    bad = tmp_path / "bad.step.yaml"
    bad.write_text(
        "step_type: X\nnode_type: internal\nspec:\n  dependencies:\n    a:\n"
        "      typ: training_data\n  outputs: {}\n"
    )
    result = run("register", "ctx", "s", str(bad), code=2)
    assert result.stderr.splitlines()[0] == (
        f"error: spec.dependencies.a.typ: unknown key 'typ' ({bad}:6:7)"
    )
    assert result.stderr.splitlines()[1] == "hint: did you mean 'type'?"
    assert not isolated_store.exists()


def test_debug_shows_traceback(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run("--debug", "show", "ctx", "missing", code=1)
    assert "Traceback" in result.stderr
    monkeypatch.setenv("REGMAN_DEBUG", "1")
    assert "Traceback" in run("show", "ctx", "missing", code=1).stderr


def test_contexts_list_table_and_json(run: Run) -> None:
    register_examples(run)
    table = run("contexts", "list").stdout
    assert "training_pipeline" in table and "dev" in table
    assert "\x1b[" not in table  # no ANSI codes when stdout is not a terminal
    rows = json.loads(run("contexts", "list", "--json").stdout)
    assert [r["name"] for r in rows] == ["dev", "training_pipeline"]
    assert rows[1]["step_count"] == 9 and rows[1]["step_type_count"] == 7


def test_contexts_list_empty(run: Run, isolated_store: Path) -> None:
    assert json.loads(run("contexts", "list", "--json").stdout) == []
    # reads never create a store, and say when there is none
    assert f"no store at {isolated_store} yet" in run("contexts", "list").stderr
    assert "no store at /no/such/folder yet" in run("--store", "/no/such/folder", "stats").stderr
    assert not isolated_store.exists()
    run("contexts", "create", "x")
    run("clear", "x", "--yes")
    assert "no contexts yet" in run("contexts", "list").stderr


def test_contexts_create_is_idempotent(run: Run) -> None:
    assert "created" in run("contexts", "create", "fresh").stderr
    assert "already exists" in run("contexts", "create", "fresh").stderr
    assert json.loads(run("contexts", "list", "--json").stdout)[0]["step_count"] == 0
    run("contexts", "create", "FRESH", code=2)  # differs only in case


def test_contexts_show(run: Run) -> None:
    register_examples(run)
    table = run("contexts", "show", "training_pipeline").stdout
    assert "hyperparameters_s3_uri" in table and "XGBoostTraining" in table
    doc = json.loads(run("contexts", "show", "training_pipeline", "--json").stdout)
    assert doc["context"] == "training_pipeline" and doc["revision"] == 1  # one import
    steps = doc["steps"]
    assert sorted(steps) == sorted(
        p.name.removesuffix(".step.yaml") for p in TRAINING.glob("*.step.yaml")
    )
    assert steps["training"]["spec"]["outputs"]["model_output"]["type"] == "model_artifacts"


def test_show_yaml_and_json_agree(run: Run) -> None:
    import yaml

    run("register", "ctx", "training", TRAINING_SPEC)
    as_yaml = yaml.safe_load(run("show", "ctx", "training").stdout)
    as_json = json.loads(run("show", "ctx", "training", "--json").stdout)
    assert as_yaml == as_json
    assert as_json["registry"] == {"sagemaker_step_type": "Training"}  # extra section kept
    assert as_json["compute"]["framework_version"] == "1.7-1"


def test_remove_and_restore_step(run: Run) -> None:
    run("register", "ctx", "training", TRAINING_SPEC)
    assert "removed step 'training'" in run("remove", "ctx", "training").stderr
    run("show", "ctx", "training", code=1)
    entries = json.loads(run("trash", "list", "--json").stdout)
    assert [(e["kind"], e["context"], e["step"]) for e in entries] == [("step", "ctx", "training")]
    run("restore", "ctx", "training")
    assert "XGBoostTraining" in run("show", "ctx", "training").stdout


def test_stats_json_is_get_context_stats(run: Run, isolated_store: Path) -> None:
    register_examples(run)
    data = json.loads(run("stats", "--json").stdout)
    assert data == regman.RegistryManager(isolated_store).get_context_stats()
    only = json.loads(run("stats", "dev", "--json").stdout)
    assert list(only) == ["dev"] and only["dev"]["step_count"] == 3
    table = run("stats").stdout
    assert "total (2)" in table and " 12 " in table  # 9 + 3 steps


def test_clear_needs_confirmation(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    register_examples(run)
    result = run("clear", "dev", code=1)  # stdin is not a terminal and no --yes
    assert "pass --yes" in result.stderr
    monkeypatch.setattr(render, "stdin_is_terminal", lambda: True)
    run("clear", "dev", input="n\n", code=1)
    assert "dev" in run("contexts", "list").stdout
    run("clear", "dev", input="y\n")
    assert [r["name"] for r in json.loads(run("contexts", "list", "--json").stdout)] == [
        "training_pipeline"
    ]


def test_clear_all_and_restore(run: Run) -> None:
    register_examples(run)
    run("clear", "--all", "--yes")
    assert json.loads(run("contexts", "list", "--json").stdout) == []
    run("restore", "dev")
    assert json.loads(run("stats", "--json").stdout)["dev"]["step_count"] == 3
    run("clear", code=2)  # neither a context nor --all
    run("clear", "dev", "--all", "--yes", code=2)
    result = run("clear", "--all", "--if-revision", "1", code=2)  # refused before asking
    assert "not with --all" in result.stderr and "[y/N]" not in result.stderr


def test_clear_purge_skips_trash(run: Run) -> None:
    run("register", "ctx", "training", TRAINING_SPEC)
    run("clear", "ctx", "--yes", "--purge")
    assert json.loads(run("trash", "list", "--json").stdout) == []
    run("restore", "ctx", code=1)


def test_trash_empty(run: Run) -> None:
    run("register", "ctx", "training", TRAINING_SPEC)
    run("clear", "ctx", "--yes")
    run("trash", "empty", code=1)  # no terminal, no --yes
    assert "purged 1 trash entry" in run("trash", "empty", "--yes").stderr
    run("restore", "ctx", code=1)  # purged for good
    run("history", "ctx", code=1)  # with its history
    assert json.loads(run("trash", "list", "--json").stdout) == []


def test_validate_reports_every_invalid_file(
    run: Run, tmp_path: Path, isolated_store: Path
) -> None:
    bad1, bad2 = tmp_path / "one.yaml", tmp_path / "two.yaml"
    bad1.write_text("step_type: X\nnode_type: sink\n")
    bad2.write_text("- just a list\n")
    result = run("validate", TRAINING_SPEC, str(bad1), str(bad2), code=2)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and str(bad1) in errors[0] and str(bad2) in errors[1]
    assert f"ok: {TRAINING_SPEC}" in result.stdout
    data = json.loads(run("validate", TRAINING_SPEC, str(bad1), "--json", code=2).stdout)
    assert [d["valid"] for d in data] == [True, False] and data[1]["line"] == 2
    run("validate", TRAINING_SPEC, PREPROCESS_SPEC)
    assert not isolated_store.exists()


def test_import_is_all_or_nothing(run: Run, tmp_path: Path, isolated_store: Path) -> None:
    bad = tmp_path / "broken.step.yaml"
    bad.write_text("step_type: X\n")
    result = run("import", "ctx", TRAINING_SPEC, str(bad), code=2)
    assert "nothing was registered" in result.stderr
    assert not isolated_store.exists()
    result = run("import", "ctx", TRAINING_SPEC, PREPROCESS_SPEC, "--json")
    assert json.loads(result.stdout)["steps"] == {
        "training": "created",
        "preprocessing_training": "created",
    }


def test_info(run: Run, isolated_store: Path) -> None:
    run("register", "ctx", "training", TRAINING_SPEC)
    data = json.loads(run("info", "--json").stdout)
    assert data["store"] == str(isolated_store)
    assert data["contexts"] == 1 and data["format_version"] == 2
    assert data["cleared_contexts"] == 0 and data["revisions"] == 1
    assert data["regman_version"] == regman.__version__


def test_store_option_beats_regman_home(run: Run, tmp_path: Path, isolated_store: Path) -> None:
    other = tmp_path / "other-store"
    run("--store", str(other), "register", "ctx", "training", TRAINING_SPEC)
    assert (other / "contexts" / "ctx").is_dir()
    assert not isolated_store.exists()
    assert json.loads(run("--store", str(other), "info", "--json").stdout)["store"] == str(other)


def test_markup_in_names_is_escaped(run: Run) -> None:
    run("register", "lib.dev", "step.v1", TRAINING_SPEC)
    assert "lib.dev" in run("contexts", "list").stdout
    assert "step.v1" in run("contexts", "show", "lib.dev").stdout


def test_diff_contexts_command(run: Run) -> None:
    register_examples(run)
    run(
        "import",
        "production",
        *map(str, sorted((EXAMPLES / "environments/production").glob("*.yaml"))),
    )
    result = run("diff", "dev", "production", code=1)
    assert "spec.dependencies.hyperparameters_s3_uri.required" in result.stdout
    data = json.loads(run("diff", "dev", "production", "--json", code=1).stdout)
    assert data["only_right"] == ["hyperparameter_prep"]
    assert data["same"] == ["preprocessing_training"]
    run("diff", "dev", "dev")  # identical: exit 0
    run("diff", "dev", "nowhere", code=1)


def test_export_then_import_round_trips(run: Run, tmp_path: Path) -> None:
    register_examples(run)
    out = tmp_path / "exported"
    run("export", "training_pipeline", str(out))
    files = sorted(out.glob("*.step.yaml"))
    assert len(files) == 9
    run("export", "training_pipeline", str(out), code=1)  # refuses to overwrite
    run("export", "training_pipeline", str(out), "--force")
    run("import", "copy", *map(str, files))
    run("diff", "training_pipeline", "copy")  # identical: exit 0
    run("export", "nowhere", str(out), code=1)


def test_doctor_healthy_damaged_repaired(run: Run, isolated_store: Path) -> None:
    register_examples(run)
    report = json.loads(run("doctor", "--json").stdout)
    assert report["healthy"] is True and report["items"] == []
    head = isolated_store / "contexts" / "dev" / "head.json"
    head.write_text("{ damaged")
    (isolated_store / "contexts" / "dev" / "specs" / ".tmp-123-4-5").write_text("half")
    result = run("doctor", code=1)
    assert "damaged" in result.stderr and "dev: head" in result.stdout
    assert "regman doctor" in run("contexts", "show", "dev", code=3).stderr
    run("doctor", "--repair")
    assert json.loads(run("doctor", "--json").stdout)["healthy"] is True
    assert json.loads(run("stats", "--json").stdout)["dev"]["step_count"] == 3


def test_newer_store_format_is_refused(run: Run, isolated_store: Path) -> None:
    run("register", "ctx", "training", TRAINING_SPEC)
    (isolated_store / "regman-store.json").write_text('{"format_version": 99}')
    before = snapshot(isolated_store)
    for args in (["contexts", "list"], ["stats"], ["register", "ctx", "x", TRAINING_SPEC]):
        result = run(*args, code=3)
        assert "format version 99" in result.stderr.splitlines()[0]
    assert snapshot(isolated_store) == before


def test_lock_timeout_is_a_clear_error(
    run: Run, isolated_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import filelock

    run("register", "ctx", "training", TRAINING_SPEC)
    monkeypatch.setenv("REGMAN_LOCK_TIMEOUT", "0.2")
    holder = filelock.FileLock(
        str(isolated_store / "locks" / "ctx.lock"), is_singleton=False, thread_local=False
    )
    with holder:
        result = run("register", "ctx", "other", PREPROCESS_SPEC, code=3)
    assert "context 'ctx' is locked" in result.stderr
    run("register", "ctx", "other", PREPROCESS_SPEC)


def test_remove_purge(run: Run) -> None:
    run("register", "ctx", "training", TRAINING_SPEC)
    run("remove", "ctx", "training", "--purge", code=1)  # no terminal, no --yes
    run("show", "ctx", "training")
    run("remove", "ctx", "training", "--purge", "--yes")
    run("show", "ctx", "training", code=1)
    assert json.loads(run("trash", "list", "--json").stdout) == []


HOSTILE_TEXT = [
    n
    for n in __import__("tests.test_names", fromlist=["HOSTILE"]).HOSTILE
    if isinstance(n, str) and "\x00" not in n
]


@pytest.mark.parametrize("name", HOSTILE_TEXT, ids=repr)
def test_hostile_names_exit_2_and_create_nothing(run: Run, name: str, tmp_path: Path) -> None:
    root = tmp_path / "store"
    run("--store", str(root), "register", "ok", "fine", TRAINING_SPEC)
    before = snapshot(tmp_path, include_locks=True)
    # "--" so that names like "-name" or "--help" reach regman as names, not options
    for args in (
        ["register", "--", name, "step", TRAINING_SPEC],
        ["register", "--", "ok", name, TRAINING_SPEC],
        ["contexts", "create", "--", name],
        ["clear", "--yes", "--", name],
        ["remove", "--", "ok", name],
    ):
        result = run("--store", str(root), *args, code=2)
        assert result.stderr.startswith("error: "), (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert snapshot(tmp_path, include_locks=True) == before
