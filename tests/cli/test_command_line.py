"""The command line as a new user meets it (issue 12): errors, pipes, Ctrl-C, widths, diff."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import regman
from regman.cli.render import display_width, plain_table
from tests.cli.conftest import TRAINING, Run
from tests.cli.test_installed import regman_executable
from tests.conftest import EXAMPLES

SPEC = str(TRAINING / "training.step.yaml")
OTHER = str(TRAINING / "preprocessing_training.step.yaml")


def register_examples(run: Run) -> None:
    run("import", "training_pipeline", str(TRAINING))
    run("import", "dev", str(EXAMPLES / "environments" / "dev"))
    run("import", "production", str(EXAMPLES / "environments" / "production"))


# -- usage errors: the README's form, exit 2 ------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error", "usage"),
    [
        (
            ["register", "ctx"],
            "error: missing argument 'STEP'.",
            "hint: usage: regman register [OPTIONS] CONTEXT STEP SPEC; "
            "see 'regman register --help'",
        ),
        (
            ["contexts", "list", "--jsn"],
            "error: no such option: --jsn",
            "hint: usage: regman contexts list [OPTIONS]; see 'regman contexts list --help'",
        ),
        (
            ["history", "ctx", "--limit", "0"],
            "error: invalid value for '--limit' / '-n'",
            "hint: usage: regman history [OPTIONS] CONTEXT [STEP]; see 'regman history --help'",
        ),
        (
            ["resolv", "ctx"],
            "error: no such command 'resolv'",
            "hint: usage: regman [OPTIONS] COMMAND [ARGS]...; see 'regman --help'",
        ),
        (
            ["clear"],
            "error: invalid value: give a CONTEXT or --all, not both or neither",
            "hint: usage: regman clear [OPTIONS] [CONTEXT]; see 'regman clear --help'",
        ),
    ],
)
def test_usage_errors_are_error_and_hint_with_exit_2(
    run: Run, args: list[str], error: str, usage: str
) -> None:
    result = run(*args, code=2)
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith(error), lines[0]
    assert lines[1] == usage
    assert "Usage:" not in result.stderr and "Try '" not in result.stderr
    assert result.stdout == ""


def test_unknown_command_suggests_the_near_one(run: Run) -> None:
    assert "did you mean 'resolve'" in run("resolv", code=2).stderr.lower()


def test_usage_lines_use_conventional_names(run: Run) -> None:
    for command, usage in [
        ("register", "regman register [OPTIONS] CONTEXT STEP SPEC"),
        ("import", "regman import [OPTIONS] CONTEXT SPEC..."),
        ("diff", "regman diff [OPTIONS] LEFT RIGHT [STEP]..."),
        ("stats", "regman stats [OPTIONS] [CONTEXT]..."),
        ("rollback", "regman rollback [OPTIONS] CONTEXT [STEP]..."),
        ("export", "regman export [OPTIONS] CONTEXT [DIR]"),
    ]:
        text = run(command, "--help").stdout
        assert f"Usage: {usage}\n" in text, text
        assert "{" not in text.splitlines()[0] and "<list" not in text


def test_global_options_after_the_command(run: Run, tmp_path: Path) -> None:
    other = tmp_path / "other"
    run("register", "ctx", "training", SPEC, "--store", str(other))
    assert (other / "regman-store.json").exists()
    listed = json.loads(run("contexts", "list", "--json", f"--store={other}").stdout)
    assert [r["name"] for r in listed] == ["ctx"]
    result = run("show", "ctx", "nope", "--debug", "--store", str(other), code=1)
    assert "Traceback" in result.stderr
    # after "--" they are names, not options
    result = run("register", "--store", str(other), "--", "ctx", "--debug", SPEC, code=2)
    assert "invalid step name" in result.stderr


# -- not-found errors suggest the nearest names ---------------------------------------------


def test_not_found_suggests_near_names(run: Run) -> None:
    run("register", "training_pipeline", "training", SPEC)
    for args in (
        ["contexts", "show", "trainng_pipeline"],
        ["stats", "trainng_pipeline"],
        ["history", "trainng_pipeline"],
    ):
        result = run(*args, code=1)
        assert "hint: did you mean 'training_pipeline'?" in result.stderr, args
    result = run("show", "training_pipeline", "trainig", code=1)
    assert "hint: did you mean 'training'?" in result.stderr


# -- error lines are capped ------------------------------------------------------------------


def test_error_lines_are_capped(run: Run, isolated_store: Path) -> None:
    """400 steps each missing a required input: the error summarises, it does not list all."""
    spec = regman.load_spec_file(EXAMPLES / "training_pipeline" / "registration.step.yaml")
    manager = regman.RegistryManager(isolated_store)
    manager.register_specs("big", {f"step_number_{i:04d}": spec for i in range(400)})
    result = run("resolve", "big", "--json", code=1)
    json.loads(result.stdout)  # the data is whole
    assert result.stderr.count("\n") <= 4
    assert all(len(line) <= 400 for line in result.stderr.splitlines()), result.stderr
    assert "more" in result.stderr


# -- clear says how many steps would go -----------------------------------------------------


def test_clear_prompt_counts_steps_and_the_hint_names_the_context(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regman.cli import render

    register_examples(run)
    monkeypatch.setattr(render, "stdin_is_terminal", lambda: True)
    result = run("clear", "dev", input="n\n", code=1)
    assert "clear context 'dev' (3 steps)? [y/N]" in result.stderr
    result = run("clear", "dev", input="", code=1)  # end of input: no
    result = run("clear", "dev", input="yes\n")
    assert "regman restore dev" in result.stderr
    run("restore", "dev")


# -- diff: whole values off a terminal, absence as data --------------------------------------


def test_diff_values_are_whole_and_absence_is_data(run: Run, tmp_path: Path) -> None:
    long_text = "a description that goes on " * 10
    left = tmp_path / "left.step.yaml"
    right = tmp_path / "right.step.yaml"
    text = Path(SPEC).read_text()
    left.write_text(text.replace("description:", f"description: {long_text!r} #", 1))
    right.write_text(text + "\nnotes: {literal: '<missing>'}\n")
    run("register", "a", "s", str(left))
    run("register", "b", "s", str(right))
    table = run("diff", "a", "b", code=1).stdout
    assert long_text.strip() in table.replace("\n", "")  # not cut at 60 characters
    assert "(absent)" in table
    doc = json.loads(run("diff", "a", "b", "--json", code=1).stdout)
    changes = {c["path"]: c for c in doc["changed"]["s"]}
    notes = changes["notes"]
    assert (notes["in_left"], notes["left"]) == (False, None)
    assert (notes["in_right"], notes["right"]) == (True, {"literal": "<missing>"})
    assert changes["description"]["left"] == long_text
    assert doc["identical"] is False


def test_diff_of_a_context_with_itself(run: Run) -> None:
    register_examples(run)
    result = run("diff", "dev", "dev")
    assert result.stderr.strip() == "'dev' and 'dev' are identical (3 steps)"
    assert json.loads(run("diff", "dev", "dev", "--json").stdout)["identical"] is True


# -- stats totals -----------------------------------------------------------------------------


def test_stats_totals_count_distinct_step_types(run: Run) -> None:
    register_examples(run)
    stats = json.loads(run("stats", "--json").stdout)
    per_context = sum(s["step_type_count"] for s in stats.values())
    manager = regman.RegistryManager(os.environ["REGMAN_HOME"])
    distinct = {t for name in stats for t in manager.step_types(name)}
    assert len(distinct) < per_context  # dev and production share their types
    total = next(line for line in run("stats").stdout.splitlines() if "total (3)" in line)
    cells = [c.strip() for c in total.strip("│").split("│")]
    assert cells[1] == str(sum(s["step_count"] for s in stats.values()))
    assert cells[2] == str(len(distinct))


# -- widths: names never cut, wide characters aligned ----------------------------------------


def test_plain_tables_align_wide_and_combining_characters() -> None:
    text = plain_table(
        ["step", "step type"],
        [["a", "日本語ステップ"], ["bb", "cafe\u0301"], ["ccc", "plain"]],
        None,
        ["left", "left"],
    )
    widths = {display_width(line) for line in text.splitlines()}
    assert len(widths) == 1, text  # every line as wide on screen as every other
    assert display_width("日本語") == 6 and display_width("e\u0301") == 1


def test_wide_step_types_align_through_the_command(run: Run, tmp_path: Path) -> None:
    spec = tmp_path / "wide.step.yaml"
    spec.write_text(Path(SPEC).read_text().replace("XGBoostTraining", "日本語ステップ", 1))
    run("register", "ctx", "wide", str(spec))
    run("register", "ctx", "narrow", SPEC)
    table = run("contexts", "show", "ctx").stdout
    assert "日本語ステップ" in table
    assert len({display_width(line) for line in table.splitlines()}) == 1


def run_in_terminal(
    args: list[str], home: Path, columns: int, *, input_after: bytes | None = None
) -> tuple[int, str]:
    """Run the installed command on a pseudo-terminal ``columns`` wide; (exit code, output)."""
    import fcntl
    import pty
    import struct
    import termios

    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {**os.environ, "REGMAN_HOME": str(home), "COLUMNS": str(columns), "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [regman_executable(), *args], stdin=secondary, stdout=secondary, stderr=secondary, env=env
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    return proc.wait(timeout=60), b"".join(chunks).decode()


LONG_NAMES = ("training_pipeline_for_the_quarterly_fraud_model",)


@pytest.mark.parametrize("columns", [80, 120])
def test_names_are_never_cut_on_a_narrow_terminal(tmp_path: Path, columns: int) -> None:
    home = tmp_path / "home"
    context = LONG_NAMES[0]
    manager = regman.RegistryManager(home)
    for path in sorted(TRAINING.glob("*.step.yaml")):
        name = path.name.removesuffix(".step.yaml")
        manager.register_specs(context, {f"{name}_job": regman.load_spec_file(path)})
    for args in (["stats"], ["contexts", "list"], ["contexts", "show", context]):
        code, out = run_in_terminal(args, home, columns)
        assert code == 0, out
        assert "…" not in out, (args, out)
        flat = out.replace("\r\n", "\n")
        assert context in flat or (args[0] == "contexts" and args[1] == "show"), (args, out)
        if args[-1] == context:
            for path in TRAINING.glob("*.step.yaml"):
                assert path.name.removesuffix(".step.yaml") + "_job" in flat, (args, out)
        if args == ["stats"]:
            assert "UTC" in flat and any(
                line.count(":") >= 2 and "UTC" in line for line in flat.splitlines()
            )
    code, out = run_in_terminal(["resolve", context], home, columns)
    assert "…" not in out and "data_loading_training_job.DATA" in out.replace("\r\n", "\n")


# -- pipes and Ctrl-C ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["contexts", "list"],
        ["contexts", "list", "--json"],
        ["stats"],
        ["history", "training_pipeline", "--json"],
        ["resolve", "training_pipeline"],
        ["explain", "training_pipeline", "training", "input_path"],
        ["show", "training_pipeline", "training"],
    ],
    ids=" ".join,
)
def test_a_closed_pipe_exits_141_quietly(tmp_path: Path, args: list[str]) -> None:
    home = tmp_path / "home"
    manager = regman.RegistryManager(home)
    for path in sorted(TRAINING.glob("*.step.yaml")):
        manager.register_specs(
            "training_pipeline",
            {path.name.removesuffix(".step.yaml"): regman.load_spec_file(path)},
        )
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before regman writes anything
    proc = subprocess.run(
        [regman_executable(), *args],
        stdout=write_end,
        stderr=subprocess.PIPE,
        env={**os.environ, "REGMAN_HOME": str(home)},
        timeout=60,
    )
    os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert proc.stderr == b""


def test_ctrl_c_at_the_prompt_exits_130_quietly(tmp_path: Path) -> None:
    import pty

    home = tmp_path / "home"
    regman.RegistryManager(home).register_specs("ctx", {"s": regman.load_spec_file(SPEC)})
    main, secondary = pty.openpty()
    proc = subprocess.Popen(
        [regman_executable(), "clear", "ctx"],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env={**os.environ, "REGMAN_HOME": str(home)},
    )
    os.close(secondary)
    seen = b""
    deadline = time.monotonic() + 30
    while b"[y/N]" not in seen and time.monotonic() < deadline:
        seen += os.read(main, 4096)
    assert b"clear context 'ctx' (1 step)? [y/N]" in seen
    proc.send_signal(signal.SIGINT)  # what the terminal sends on Ctrl-C
    assert proc.wait(timeout=30) == 130
    rest = b""
    try:
        while chunk := os.read(main, 4096):
            rest += chunk
    except OSError:
        pass
    os.close(main)
    assert b"Aborted" not in rest and b"Traceback" not in rest and b"error" not in rest
    assert regman.RegistryManager(home).list_contexts() == ["ctx"]


# -- completion of names ------------------------------------------------------------------------


def complete(run: Run, words: str) -> list[str]:
    """What bash completion offers for the last word of ``words``."""
    result = run.runner.invoke(
        __import__("regman.cli", fromlist=["app"]).app,
        [],
        prog_name="regman",
        env={
            "_REGMAN_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        },
    )
    assert result.exit_code == 0, result.output
    return [line.split(",", 1)[-1] for line in result.stdout.splitlines() if line]


def test_completion_of_context_and_step_names(run: Run, tmp_path: Path) -> None:
    register_examples(run)
    assert complete(run, "regman contexts show tr") == ["training_pipeline"]
    assert complete(run, "regman show training_pipeline preprocessing_") == [
        "preprocessing_calibration",
        "preprocessing_training",
    ]
    assert complete(run, "regman history d") == ["dev"]
    assert sorted(complete(run, "regman diff dev ")) == ["dev", "production", "training_pipeline"]
    assert complete(run, "regman show training_pipeline@1 pay") == ["payload"]
    assert complete(run, "regman show nowhere x") == []  # quietly nothing
    other = tmp_path / "other"
    run("--store", str(other), "register", "elsewhere", "s", SPEC)
    assert complete(run, f"regman --store {other} contexts show e") == ["elsewhere"]


# -- help: every command has examples ------------------------------------------------------------


def command_paths() -> list[str]:
    from typer.main import get_command

    from regman.cli import app

    root = get_command(app)
    paths = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        sub = getattr(command, "commands", None)
        paths += [f"{name} {s}" for s in sub] if sub else [name]
    return paths


@pytest.mark.parametrize("path", command_paths())
def test_every_command_help_has_examples_of_itself(run: Run, path: str) -> None:
    from regman.cli.examples import EXAMPLES

    text = run(*path.split(), "--help").stdout
    assert "Examples:" in text
    for example in EXAMPLES[path]:
        assert f"{example} ".startswith(f"regman {path} "), example
        assert f"    {example}" in text  # printed as written, not rewrapped


def test_output_name_lists_only_names(run: Run) -> None:
    register_examples(run)
    assert run("contexts", "list", "-o", "name").stdout.split() == [
        "dev",
        "production",
        "training_pipeline",
    ]
    steps = run("contexts", "show", "dev", "--output", "name").stdout.split()
    assert steps == ["data_loading_training", "preprocessing_training", "training"]
    run("contexts", "list", "-o", "wide", code=2)


def test_contexts_delete_is_clear(run: Run) -> None:
    register_examples(run)
    run("contexts", "delete", "dev", code=1)  # asks first: no terminal, no --yes
    assert "regman restore dev" in run("contexts", "delete", "dev", "--yes").stderr
    assert "dev" not in run("contexts", "list", "-o", "name").stdout.split()
    run("restore", "dev")


def test_explain_wraps_its_prose_off_a_terminal(run: Run) -> None:
    register_examples(run)
    result = run("explain", "training_pipeline", "training", "input_path")
    assert "preprocessing_training.processed_data" in result.stdout  # whole, never cut
    assert max(display_width(line) for line in result.stdout.splitlines()) <= 220
    data = json.loads(
        run("explain", "training_pipeline", "training", "input_path", "--json").stdout
    )
    assert data["candidates"]  # the data, unwrapped, is in --json


# -- validate: every problem of a file ------------------------------------------------------------

MANY_PROBLEMS = """\
step_type: X
node_type: internal
spec:
  dependencies:
    a:
      typ: training_data
      colour: red
    b:
      type: nonsense
  outputs:
    o:
      type: model_artifacts
      property_path: properties.X
      alias: [y]
  extra_key: 1
"""


def test_validate_reports_every_problem_of_a_file(run: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.step.yaml"
    bad.write_text(MANY_PROBLEMS)
    result = run("validate", str(bad), SPEC, code=2)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert [e.rsplit(":", 2)[-2:] for e in errors] == [
        ["6", "7)"],
        ["7", "7)"],
        ["9", "13)"],
        ["14", "7)"],
        ["15", "3)"],
    ]
    assert "hint: did you mean 'type'?" in result.stderr
    assert "hint: did you mean 'aliases'?" in result.stderr
    assert "1 valid, 1 invalid" in result.stderr
    (doc, ok) = json.loads(run("validate", str(bad), SPEC, "--json", code=2).stdout)
    assert ok["valid"] is True and doc["valid"] is False
    assert [p["field"] for p in doc["problems"]] == [
        "spec.dependencies.a.typ",
        "spec.dependencies.a.colour",
        "spec.dependencies.b.type",
        "spec.outputs.o.alias",
        "spec.extra_key",
    ]
    # register still stops at its first problem; validate's JSON names it at top level
    first = run("register", "ctx", "s", str(bad), code=2).stderr.splitlines()[0]
    assert first == errors[-1] and (doc["line"], doc["column"]) == (15, 3)


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        (["contexts", "list", "--store", "X"], ["--store", "X", "contexts", "list"]),
        (["--store", "X", "stats"], ["--store", "X", "stats"]),
        (["show", "c", "s", "--debug"], ["--debug", "show", "c", "s"]),
        (["show", "c", "s", "--store=X"], ["--store=X", "show", "c", "s"]),
        (["register", "--", "c", "--debug", "f"], ["register", "--", "c", "--debug", "f"]),
        (["--debug", "stats"], ["--debug", "stats"]),
    ],
)
def test_hoisting_global_options(given: list[str], parsed: list[str]) -> None:
    from regman.cli.app import hoist_global_options

    assert hoist_global_options(given) == parsed
