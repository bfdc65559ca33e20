"""The installed ``regman`` executable, run as a real subprocess on a temporary store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES


def regman_executable() -> str:
    beside = Path(sys.executable).parent / "regman"
    found = str(beside) if beside.exists() else shutil.which("regman")
    if not found:
        pytest.fail("the regman command is not installed next to this Python")
    return found


def run(*args: str, home: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REGMAN_HOME": str(home)}
    env.pop("REGMAN_DEBUG", None)
    return subprocess.run(
        [regman_executable(), *args],
        env=env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


def test_installed_command_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "home"
    spec = EXAMPLES / "training_pipeline" / "training.step.yaml"
    result = run("register", "training_pipeline", "training", str(spec), home=home)
    assert result.returncode == 0, result.stderr
    assert "created" in result.stderr
    listed = run("contexts", "list", "--json", home=home)
    assert json.loads(listed.stdout)[0]["name"] == "training_pipeline"
    table = run("stats", home=home)
    assert table.returncode == 0 and "\x1b[" not in table.stdout  # a pipe gets no ANSI codes
    missing = run("show", "training_pipeline", "nope", home=home)
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: step 'nope' is not registered")
    assert "Traceback" not in missing.stderr
    bad = run("register", "x", "y", "-", home=home, stdin="\x00binary")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_python_dash_m(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "regman", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "REGMAN_HOME": str(tmp_path)},
    )
    assert result.returncode == 0 and result.stdout.startswith("regman ")


def test_closed_pipe_is_quiet(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for i in range(30):
        run("contexts", "create", f"ctx{i}", home=home)
    proc = subprocess.Popen(
        f"'{regman_executable()}' contexts list | head -1",
        shell=True,
        env={**os.environ, "REGMAN_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=60)
    assert out.count("\n") == 1
    assert "Traceback" not in err


def test_installed_history_and_rollback_round_trip(tmp_path: Path) -> None:
    home = tmp_path / "home"
    training = EXAMPLES / "training_pipeline"
    first = run("register", "ctx", "training", str(training / "training.step.yaml"), home=home)
    assert first.returncode == 0, first.stderr
    second = run(
        "register",
        "ctx",
        "training",
        str(training / "preprocessing_training.step.yaml"),
        "-m",
        "try the preprocessing spec",
        home=home,
    )
    assert second.returncode == 0, second.stderr
    rows = json.loads(run("history", "ctx", "--json", home=home).stdout)
    assert [(r["revision"], r["message"]) for r in rows] == [
        (2, "try the preprocessing spec"),
        (1, None),
    ]
    refused = run("rollback", "ctx", "--to", "1", home=home, stdin="")  # not a terminal
    assert refused.returncode == 1 and "--yes" in refused.stderr
    back = run("rollback", "ctx", "--to", "1", "--yes", home=home)
    assert back.returncode == 0, back.stderr
    assert "as revision 3" in back.stderr
    shown = json.loads(run("show", "ctx", "training", "--json", home=home).stdout)
    assert shown["step_type"] == "XGBoostTraining"
    before = json.loads(run("show", "ctx@2", "training", "--json", home=home).stdout)
    assert before["step_type"] == "TabularPreprocessing"
    moved = run(
        "register", "ctx", "x", str(training / "payload.step.yaml"), "--if-revision", "2", home=home
    )
    assert moved.returncode == 1
    assert moved.stderr.startswith("error: context 'ctx' is at revision 3, not 2")
