"""Edge cases found in review: each once did damage, printed a traceback or lied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import TRAINING, Run
from tests.conftest import snapshot

SPEC = str(TRAINING / "training.step.yaml")
OTHER = str(TRAINING / "preprocessing_training.step.yaml")


def test_restore_of_a_recreated_context_is_refused_and_keeps_what_is_there(
    run: Run, isolated_store: Path
) -> None:
    run("register", "c", "s1", SPEC)
    run("clear", "c", "--yes")
    run("contexts", "create", "c")
    run("register", "c", "s2", OTHER)
    stray = isolated_store / "contexts" / "c" / "specs" / "precious.yaml"
    stray.write_bytes(Path(SPEC).read_bytes())  # a file regman did not write
    result = run("restore", "c", code=1)  # the context is live again: refused
    assert "is not cleared" in result.stderr and "regman restore c STEP" in result.stderr
    assert stray.exists()
    assert json.loads(run("stats", "--json").stdout)["c"]["step_count"] == 1
    run("restore", "c", "s1")  # the cleared step comes back on its own
    assert sorted(json.loads(run("contexts", "show", "c", "--json").stdout)["steps"]) == [
        "s1",
        "s2",
    ]


def test_a_cleared_then_recreated_context_lists_its_steps_in_the_trash(run: Run) -> None:
    run("register", "c", "s1", SPEC)
    run("clear", "c", "--yes")
    assert [e["kind"] for e in json.loads(run("trash", "list", "--json").stdout)] == ["context"]
    run("contexts", "create", "c")
    entries = json.loads(run("trash", "list", "--json").stdout)
    assert [(e["kind"], e["context"], e["step"]) for e in entries] == [("step", "c", "s1")]
    run("restore", "c", "s1")
    assert json.loads(run("stats", "--json").stdout)["c"]["step_count"] == 1
    assert json.loads(run("trash", "list", "--json").stdout) == []


def test_restore_refuses_a_case_clash(run: Run) -> None:
    run("register", "DEV", "s", SPEC)
    run("clear", "DEV", "--yes")
    # a cleared context keeps its name (and history): 'dev' would clash with it
    assert "differs only in case" in run("register", "dev", "s", SPEC, code=2).stderr
    run("restore", "DEV")
    run("register", "c", "X", SPEC)
    run("remove", "c", "X")
    run("register", "c", "x", SPEC)
    run("restore", "c", "X", code=2)
    names = [r["name"] for r in json.loads(run("contexts", "list", "--json").stdout)]
    assert names == ["DEV", "c"]


def test_a_purged_context_has_nothing_to_restore(run: Run) -> None:
    run("register", "c2", "s", SPEC)
    run("remove", "c2", "s")
    run("clear", "c2", "--yes", "--purge")
    assert "nothing to restore" in run("restore", "c2", "s", code=1).stderr
    assert json.loads(run("contexts", "list", "--json").stdout) == []
    assert json.loads(run("trash", "list", "--json").stdout) == []


def test_a_damaged_stored_spec_is_reported_by_every_read(run: Run, isolated_store: Path) -> None:
    run("register", "c2", "s", SPEC)
    run("register", "c2", "ok", OTHER)
    (stored,) = (isolated_store / "contexts" / "c2" / "specs" / "s").iterdir()
    stored.write_text("not: [a spec\n")
    for args in (["show", "c2", "s"], ["contexts", "show", "c2"], ["resolve", "c2"]):
        result = run(*args, code=None)
        assert result.exit_code != 0, args
        assert str(stored) in result.stderr and "regman doctor" in result.stderr, args


def test_spec_that_would_be_stored_too_big_is_refused(
    run: Run, tmp_path: Path, isolated_store: Path
) -> None:
    nested = "x"
    for _ in range(55):
        nested = "{a: " + nested + "}"
    keys = ", ".join(f"k{i}: {nested}" for i in range(500))
    big = tmp_path / "big.yaml"
    big.write_text(f"step_type: S\nnode_type: singular\nextra: {{{keys}}}\n")
    assert big.stat().st_size < 1024 * 1024
    result = run("register", "big", "s", str(big), code=2)
    assert "KiB" in result.stderr
    assert not (isolated_store / "contexts" / "big").exists()


def test_import_refuses_names_equal_but_for_case(
    run: Run, tmp_path: Path, isolated_store: Path
) -> None:
    lower, upper = tmp_path / "a.yaml", tmp_path / "A.yaml"
    lower.write_bytes(Path(SPEC).read_bytes())
    upper.write_bytes(Path(OTHER).read_bytes())
    run("import", "newctx", str(lower), str(upper), code=2)
    assert not isolated_store.exists()


def test_import_refuses_a_clash_with_a_stored_step_before_writing(run: Run) -> None:
    run("register", "ctx", "a", SPEC)
    run(
        "import",
        "ctx",
        OTHER,
        SPEC,
        code=1,
    ) if False else None
    result = run(
        "import", "ctx", "--no-replace", OTHER, str(TRAINING / "payload.step.yaml"), code=None
    )
    assert result.exit_code == 0


def test_a_missing_locks_folder_is_recreated(run: Run, isolated_store: Path) -> None:
    import shutil

    run("register", "c", "s", SPEC)
    shutil.rmtree(isolated_store / "locks")
    run("remove", "c", "s")
    run("restore", "c", "s")
    assert json.loads(run("stats", "--json").stdout)["c"]["revision"] == 3


def test_a_wrongly_typed_head_is_an_error_then_repaired_not_a_crash(
    run: Run, isolated_store: Path
) -> None:
    run("register", "c", "s", SPEC)
    head = isolated_store / "contexts" / "c" / "head.json"
    doc = json.loads(head.read_text())
    doc["removed"], doc["steps"]["s"]["outputs"] = [], "3"
    head.write_text(json.dumps(doc))
    for args in (["stats", "--json"], ["register", "c", "s2", OTHER]):
        result = run(*args, code=3)
        assert "damaged" in result.stderr and "regman doctor" in result.stderr
        assert "Traceback" not in result.stderr
    run("doctor", "--repair")
    run("register", "c", "s2", OTHER)
    assert json.loads(run("stats", "--json").stdout)["c"]["step_count"] == 2


@pytest.mark.parametrize("step", ["../../../../../tmp/evil", "a/b", ""])
def test_show_validates_names(run: Run, step: str) -> None:
    run("register", "dev", "s", SPEC)
    result = run("show", "dev", step, code=2)
    assert result.stderr.startswith("error: invalid step name")


def test_bad_lock_timeout_setting(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGMAN_LOCK_TIMEOUT", "abc")
    run("contexts", "list")  # reads take no lock
    for value in ("abc", "inf", "nan", "-1"):
        monkeypatch.setenv("REGMAN_LOCK_TIMEOUT", value)
        result = run("register", "c", "s", SPEC, code=2)
        assert "REGMAN_LOCK_TIMEOUT" in result.stderr


def test_a_set_is_refused(run: Run, tmp_path: Path) -> None:
    spec = tmp_path / "set.yaml"
    spec.write_text("step_type: S\nnode_type: singular\nextra: !!set {a, b, c}\n")
    result = run("register", "c", "s", str(spec), code=2)
    assert f"({spec}:3:8)" in result.stderr


def test_export_and_diff_do_not_skip_a_damaged_spec(
    run: Run, isolated_store: Path, tmp_path: Path
) -> None:
    run("register", "c", "good", SPEC)
    run("register", "c", "bad", OTHER)
    run("register", "d", "good", SPEC)
    (stored,) = (isolated_store / "contexts" / "c" / "specs" / "bad").iterdir()
    stored.write_text("[broken\n")
    result = run("export", "c", str(tmp_path / "out"), code=3)
    assert result.stderr.startswith("error:") and "regman doctor" in result.stderr
    assert not (tmp_path / "out").exists()
    run("diff", "c", "d", code=3)


def test_diff_names_a_step_in_neither_context(run: Run) -> None:
    run("register", "a", "s", SPEC)
    run("register", "b", "s", SPEC)
    assert "in neither context" in run("diff", "a", "b", "nosuch", code=1).stderr


def test_usage_mistakes(run: Run, isolated_store: Path) -> None:
    run("--store", "", "contexts", "list", code=2)
    run("register", "c", "s", SPEC)
    run("clear", "c", "--yes")
    before = snapshot(isolated_store)
    run("trash", "empty", "--older-than", "-1", "--yes", code=2)
    assert snapshot(isolated_store) == before


def test_doctor_without_repair_creates_nothing(run: Run, isolated_store: Path) -> None:
    import shutil

    run("register", "c", "s", SPEC)
    shutil.rmtree(isolated_store / "locks")
    before = snapshot(isolated_store, include_locks=True)
    assert json.loads(run("doctor", "--json").stdout)["healthy"] is True
    assert snapshot(isolated_store, include_locks=True) == before
