"""History, rollback, CONTEXT@N, --if-revision, messages and the trash, through CliRunner."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from regman.cli import render
from tests.cli.conftest import TRAINING, Run

SPEC = str(TRAINING / "training.step.yaml")  # XGBoostTraining
OTHER = str(TRAINING / "preprocessing_training.step.yaml")  # TabularPreprocessing
PAYLOAD = str(TRAINING / "payload.step.yaml")


@pytest.fixture
def three_revisions(run: Run) -> None:
    """ctx: 1 created training, 2 created payload (with a message), 3 updated training."""
    run("register", "ctx", "training", SPEC)
    run("register", "ctx", "payload", PAYLOAD, "-m", "add the payload step")
    run("register", "ctx", "training", OTHER)


def history(run: Run, *args: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads(run("history", *args, "--json").stdout)
    return rows


def step_type(run: Run, *args: str) -> str:
    doc = json.loads(run("show", *args, "--json").stdout)
    return str(doc["step_type"])


def test_history_json_is_newest_first_with_the_documented_keys(
    run: Run, three_revisions: None
) -> None:
    rows = history(run, "ctx")
    assert [r["revision"] for r in rows] == [3, 2, 1]
    for row in rows:
        assert {"revision", "created_at", "author", "command", "message", "changes"} <= set(row)
        created = datetime.fromisoformat(str(row["created_at"]).replace("Z", "+00:00"))
        assert created.utcoffset() == timezone.utc.utcoffset(None)  # ISO 8601, UTC
        assert row["command"] == "register"
    assert [r["changes"] for r in rows] == [
        {"training": "updated"},
        {"payload": "created"},
        {"training": "created"},
    ]
    assert [r["message"] for r in rows] == [None, "add the payload step", None]


def test_history_table_limit_and_step(run: Run, three_revisions: None) -> None:
    table = run("history", "ctx").stdout
    lines = [line for line in table.splitlines() if line.startswith("│")]
    assert len(lines) == 3 and "add the payload step" in lines[1]
    assert "updated training" in lines[0] and "created payload" in lines[1]
    assert [r["revision"] for r in history(run, "ctx", "--limit", "2")] == [3, 2]
    assert [r["revision"] for r in history(run, "ctx", "-n", "1")] == [3]
    assert [r["revision"] for r in history(run, "ctx", "training")] == [3, 1]
    assert [r["revision"] for r in history(run, "ctx", "payload")] == [2]
    assert history(run, "ctx", "nosuch") == []
    assert (
        "no revision of context 'ctx' touched step 'nosuch'"
        in run("history", "ctx", "nosuch").stderr
    )
    run("history", "ctx", "--limit", "0", code=2)
    assert "does not exist" in run("history", "nowhere", code=1).stderr


def test_author_comes_from_regman_author(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGMAN_AUTHOR", "ci-bot <ci@example.com>")
    run("register", "ctx", "training", SPEC)
    monkeypatch.delenv("REGMAN_AUTHOR")
    run("remove", "ctx", "training", "-m", "retired")
    rows = history(run, "ctx")
    assert rows[1]["author"] == "ci-bot <ci@example.com>"
    assert rows[0]["author"] != "ci-bot <ci@example.com>" and "@" in str(rows[0]["author"])
    assert (rows[0]["command"], rows[0]["message"]) == ("remove", "retired")


@pytest.mark.parametrize(
    "args",
    [
        ["register", "ctx", "payload", PAYLOAD, "-m", "why"],
        ["import", "ctx", PAYLOAD, "--message", "why"],
        ["remove", "ctx", "training", "-m", "why"],
        ["clear", "ctx", "--yes", "-m", "why"],
        ["rollback", "ctx", "--to", "1", "--yes", "-m", "why"],
        ["contexts", "create", "other", "-m", "why"],
    ],
    ids=lambda a: " ".join(a[:1]),
)
def test_every_write_records_its_message(run: Run, args: list[str]) -> None:
    run("register", "ctx", "training", SPEC)
    run("register", "ctx", "training", OTHER)
    run(*args)
    context = args[2] if args[0] == "contexts" else "ctx"
    assert history(run, context)[0]["message"] == "why"


def test_context_at_revision_everywhere_a_context_is_read(
    run: Run, three_revisions: None, tmp_path: Path
) -> None:
    assert step_type(run, "ctx@1", "training") == "XGBoostTraining"
    assert step_type(run, "ctx", "training") == "TabularPreprocessing"
    assert step_type(run, "ctx", "training", "--revision", "1") == "XGBoostTraining"
    assert step_type(run, "ctx", "training", "-r", "3") == "TabularPreprocessing"
    assert "XGBoostTraining" in run("show", "ctx@1", "training").stdout
    # contexts show
    doc = json.loads(run("contexts", "show", "ctx@1", "--json").stdout)
    assert (doc["revision"], sorted(doc["steps"])) == (1, ["training"])
    assert "revision 1" in run("contexts", "show", "ctx@1").stderr
    # diff: a revision against the present
    data = json.loads(run("diff", "ctx@1", "ctx", "--json", code=1).stdout)
    assert data["only_right"] == ["payload"] and list(data["changed"]) == ["training"]
    run("diff", "ctx@3", "ctx")  # identical: exit 0
    # export
    run("export", "ctx@2", str(tmp_path / "at2"))
    assert sorted(p.name for p in (tmp_path / "at2").iterdir()) == [
        "payload.step.yaml",
        "training.step.yaml",
    ]
    assert "XGBoostTraining" in (tmp_path / "at2" / "training.step.yaml").read_text()
    # resolve
    wiring = json.loads(run("resolve", "ctx@1", "--json", code=None).stdout)
    assert wiring["order"] == ["training"]
    # explain
    why = json.loads(run("explain", "ctx@3", "training", "DATA", "--json").stdout)
    assert why["step"] == "training"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["show", "ctx@9", "training"], "has no revision 9"),
        (["show", "ctx@x", "training"], "names no revision"),
        (["show", "ctx@0", "training"], "names no revision"),
        (["show", "ctx@1", "training", "--revision", "2"], "disagree"),
        (["show", "ctx@1", "payload"], "not registered in context 'ctx@1'"),
        (["contexts", "show", "ctx@4"], "has no revision 4"),
    ],
)
def test_bad_revision_references(
    run: Run, three_revisions: None, args: list[str], needle: str
) -> None:
    result = run(*args, code=None)
    assert result.exit_code in (1, 2)
    assert result.stderr.startswith("error: ") and needle in result.stderr


def test_a_past_revision_cannot_be_written(run: Run, three_revisions: None) -> None:
    result = run("register", "ctx@1", "training", SPEC, code=2)
    assert "invalid context name" in result.stderr


def test_rollback_all_steps_then_rollback_the_rollback(run: Run, three_revisions: None) -> None:
    result = run("rollback", "ctx", "--to", "1", "--yes")
    assert "updated: training" in result.stderr and "removed: payload" in result.stderr
    assert "as revision 4" in result.stderr
    assert step_type(run, "ctx", "training") == "XGBoostTraining"
    run("show", "ctx", "payload", code=1)
    latest = history(run, "ctx")[0]
    assert latest["command"] == "rollback"
    assert latest["changes"] == {"payload": "removed", "training": "updated"}
    run("rollback", "ctx", "--to", "3", "--yes")  # nothing is lost
    assert step_type(run, "ctx", "training") == "TabularPreprocessing"
    assert "already equals" in run("rollback", "ctx", "--to", "3", "--yes").stderr
    assert history(run, "ctx")[0]["revision"] == 5  # the no-op made no revision


def test_rollback_only_named_steps_with_json(run: Run, three_revisions: None) -> None:
    result = run("rollback", "ctx", "training", "--to", "1", "--yes", "--json")
    doc = json.loads(result.stdout)
    assert doc == {
        "context": "ctx",
        "revision": 4,
        "to": 1,
        "changed": True,
        "steps": {"training": "updated"},
    }
    assert step_type(run, "ctx", "training") == "XGBoostTraining"
    assert step_type(run, "ctx", "payload") == "Payload"  # untouched
    run("rollback", "ctx", "nosuch", "--to", "1", "--yes", code=1)
    run("rollback", "ctx", "--to", "99", "--yes", code=1)
    run("rollback", "ctx", code=2)  # --to is required


def test_rollback_confirms_on_a_terminal(
    run: Run, three_revisions: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run("rollback", "ctx", "--to", "1", code=1)  # no terminal, no --yes
    assert "pass --yes" in result.stderr
    monkeypatch.setattr(render, "stdin_is_terminal", lambda: True)
    result = run("rollback", "ctx", "--to", "1", input="n\n", code=1)
    assert "revision 3" in result.stderr and "revision 1" in result.stderr  # the prompt
    assert history(run, "ctx")[0]["revision"] == 3
    run("rollback", "ctx", "--to", "1", input="y\n")
    assert history(run, "ctx")[0]["command"] == "rollback"


@pytest.mark.parametrize(
    "args",
    [
        ["register", "ctx", "payload", OTHER],
        ["import", "ctx", OTHER],
        ["remove", "ctx", "payload"],
        ["clear", "ctx", "--yes"],
        ["rollback", "ctx", "--to", "1", "--yes"],
        ["restore", "ctx", "gone"],
    ],
    ids=lambda a: a[0],
)
def test_if_revision_refuses_when_the_head_moved(run: Run, args: list[str]) -> None:
    run("register", "ctx", "training", SPEC)
    run("register", "ctx", "payload", PAYLOAD)
    run("register", "ctx", "gone", OTHER)
    run("remove", "ctx", "gone")  # ctx is at revision 4
    result = run(*args, "--if-revision", "2", code=1)
    assert result.stderr.splitlines()[0] == "error: context 'ctx' is at revision 4, not 2"
    assert history(run, "ctx")[0]["revision"] == 4
    run(*args, "--if-revision", "4")
    assert history(run, "ctx")[0]["revision"] == 5


def test_if_revision_zero_means_a_new_context(run: Run) -> None:
    run("register", "new", "training", SPEC, "--if-revision", "0")
    result = run("register", "new", "training", OTHER, "--if-revision", "0", code=1)
    assert "is at revision 1, not 0" in result.stderr


def test_register_no_create(run: Run, isolated_store: Path) -> None:
    result = run("register", "nowhere", "training", SPEC, "--no-create", code=1)
    assert "context 'nowhere' does not exist" in result.stderr
    assert not (isolated_store / "contexts" / "nowhere").exists()
    run("import", "nowhere", SPEC, "--no-create", code=1)
    run("contexts", "create", "somewhere")
    run("register", "somewhere", "training", SPEC, "--no-create")


def test_register_into_a_new_context_says_so_and_suggests_a_near_name(run: Run) -> None:
    run("register", "training_pipeline", "training", SPEC)
    result = run("register", "trainng_pipeline", "training", SPEC)
    assert "created context 'trainng_pipeline'; did you mean 'training_pipeline'?" in (
        result.stderr
    )
    assert "created context" not in run("register", "trainng_pipeline", "x", OTHER).stderr


def test_import_a_folder_is_one_revision(run: Run, tmp_path: Path) -> None:
    folder = tmp_path / "specs"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.step.yaml").write_bytes(Path(SPEC).read_bytes())
    (folder / "nested" / "b.step.yaml").write_bytes(Path(OTHER).read_bytes())
    (folder / "notes.yaml").write_text("not a spec: true\n")  # only *.step.yaml count
    doc = json.loads(run("import", "ctx", str(folder), "--json").stdout)
    assert doc["steps"] == {"a": "created", "b": "created"} and doc["revision"] == 1
    rows = history(run, "ctx")
    assert len(rows) == 1 and rows[0]["command"] == "import"
    assert rows[0]["changes"] == {"a": "created", "b": "created"}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no *.step.yaml" in run("import", "ctx", str(empty), code=2).stderr


def test_clear_purge_deletes_the_history_for_good(run: Run, three_revisions: None) -> None:
    run("clear", "ctx", "--purge", code=1)  # no terminal, no --yes
    assert history(run, "ctx")[0]["revision"] == 3
    result = run("clear", "ctx", "--purge", "--yes")
    assert "purged 1 context: ctx" in result.stderr
    run("history", "ctx", code=1)
    run("restore", "ctx", code=1)
    assert json.loads(run("trash", "list", "--json").stdout) == []
    # a cleared context can still be purged
    run("register", "c2", "training", SPEC)
    run("clear", "c2", "--yes")
    run("clear", "c2", "--purge", "--yes")
    run("history", "c2", code=1)


def test_trash_list_empty_and_restore(run: Run, three_revisions: None) -> None:
    run("register", "other", "training", SPEC)
    run("remove", "ctx", "payload")
    run("clear", "other", "--yes")
    entries = json.loads(run("trash", "list", "--json").stdout)
    assert [(e["kind"], e["context"], e["step"]) for e in entries] == [
        ("step", "ctx", "payload"),
        ("context", "other", None),
    ]
    for e in entries:
        assert set(e) == {"kind", "context", "step", "deleted_at", "revision"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", str(e["deleted_at"]))
    table = run("trash", "list").stdout
    assert "payload" in table and "other" in table
    result = run("restore", "ctx", "payload")
    assert "restored step 'payload' of context 'ctx' (1 step, revision 5)" in result.stderr
    assert history(run, "ctx")[0]["command"] == "restore"
    assert "restored context 'other'" in run("restore", "other").stderr
    assert json.loads(run("trash", "list", "--json").stdout) == []
    assert "the trash is empty" in run("trash", "list").stderr
    # only 'trash empty' purges, and --older-than spares what is younger
    run("remove", "ctx", "payload")
    assert "purged 0 trash entries" in run("trash", "empty", "--older-than", "1", "--yes").stderr
    assert len(json.loads(run("trash", "list", "--json").stdout)) == 1
    assert "purged 1 trash entry" in run("trash", "empty", "--yes").stderr
    run("restore", "ctx", "payload", code=1)
    assert "payload" not in json.loads(run("contexts", "show", "ctx", "--json").stdout)["steps"]


def test_remove_purge_keeps_the_rest_of_the_history(run: Run, three_revisions: None) -> None:
    run("remove", "ctx", "payload", "--purge", "--yes")
    rows = history(run, "ctx")
    assert rows[0]["command"] == "remove --purge"
    assert [r["revision"] for r in rows] == [4, 3, 2, 1]
    run("restore", "ctx", "payload", code=1)
    assert step_type(run, "ctx@1", "training") == "XGBoostTraining"  # other steps keep theirs
