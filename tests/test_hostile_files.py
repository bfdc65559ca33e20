"""Hostile files: spec files and the store's own files; a clear error, never a crash.

Part 1, spec files: every one is a SpecError at the right place, never a crash.

The malformed corpus lives in tests/corpus/malformed/ with the expected location of
each error in its manifest.yaml (regenerate both with
tests/corpus/generate_malformed.py). Cases too big to commit (a file over the size
cap, 30,000 levels of nesting) are generated here. Deep nesting and alias bombs
also run in a child interpreter, with libyaml and with the pure-Python parser, so
a segmentation fault would show as the child's exit status instead of killing
pytest. Tests assert on location and type, never on wording.

Part 2, the store's own files (every attack of issue 9's "Why"): names read from a
store file that point outside it, symbolic links in place of folders and files,
FIFOs and devices, deep JSON, markers with a null version, a world-writable store,
URL schemes regman has no backend for. Each case runs the commands through the
CLI (in-process, or as a child with a timeout where a hang is the risk) and
asserts: a documented exit code (never 70), no traceback, and a sentinel folder
outside the store byte-for-byte unchanged.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import regman
from regman.cli import app
from regman.errors import SpecError
from regman.spec import StepSpecification
from regman.specfile import load_spec_file, load_spec_text
from regman.store.summary import SUMMARY_NAME
from regman.yamlsafe import MAX_SPEC_BYTES, _nesting_bound
from tests.conftest import EXAMPLES, snapshot

CORPUS = Path(__file__).resolve().parent / "corpus"
MALFORMED = CORPUS / "malformed"
VALID = CORPUS / "valid"
MANIFEST: dict[str, dict[str, Any]] = yaml.safe_load(
    (MALFORMED / "manifest.yaml").read_text(encoding="utf-8")
)
PACKAGE = Path(regman.__file__).resolve().parent


def test_corpus_is_big_and_the_manifest_covers_every_file() -> None:
    files = {p.name for p in MALFORMED.iterdir() if p.name != "manifest.yaml"}
    assert files == set(MANIFEST)
    assert len(files) >= 150


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_malformed_file_is_a_spec_error_at_its_location(name: str) -> None:
    path = MALFORMED / name
    expected = MANIFEST[name]
    with pytest.raises(SpecError) as caught:
        load_spec_file(path)
    error = caught.value
    assert error.source == str(path)
    assert (error.line, error.column) == (expected["line"], expected["column"]), (
        f"{name} ({expected['why']}): {error}"
    )
    # one line, naming file:line:column when there is a position
    text = str(error)
    assert "\n" not in text
    if expected["line"] is not None:
        assert text.startswith(f"{path}:{expected['line']}:{expected['column']}: ")


@pytest.mark.parametrize("name", sorted(MANIFEST)[::7])
def test_malformed_text_fails_the_same_way_from_bytes_and_str(name: str) -> None:
    data = (MALFORMED / name).read_bytes()
    with pytest.raises(SpecError) as from_bytes:
        load_spec_text(data, "x")
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    if decoded.startswith("\ufeff") or "\x00" in decoded:
        return
    with pytest.raises(SpecError) as from_str:
        load_spec_text(decoded, "x")
    assert (from_str.value.line, from_str.value.column) == (
        from_bytes.value.line,
        from_bytes.value.column,
    )


def test_python_tags_are_never_constructed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(
        "step_type: !!python/object/apply:os.system ['touch " + str(marker) + "']\n"
        "node_type: singular\n"
    )
    with pytest.raises(SpecError):
        load_spec_file(path)
    assert not marker.exists()


# --- generated cases ----------------------------------------------------------------------
HEAD = "step_type: A\nnode_type: singular\n"
N = 30_000

# name: (document, line, column of the first node nested more than 64 levels deep).
# Column None: libyaml scans up to 1024 characters ahead on one line looking for a
# flow key and stops at its own limit (1000 levels) first, so the column depends on
# the parser; the line, and that nothing crashes, does not.
DEEP: dict[str, tuple[str, int, int | None]] = {
    "flow_sequences": (HEAD + "x: " + "[" * N + "]" * N + "\n", 3, None),
    "flow_mappings": (HEAD + "x: " + "{a: " * N + "1" + "}" * N + "\n", 3, 4 + 4 * 63 + 1),
    "block_sequences": (HEAD + "x:\n" + "- " * N + "end\n", 4, 1 + 2 * 64),
    "block_sequences_lines": (
        HEAD + "x:\n" + "".join(" " * (2 * i) + "-\n" for i in range(200)) + " " * 400 + "end\n",
        4 + 64,
        1 + 2 * 64,
    ),
    "mixed_flow": (HEAD + "x: " + "[{a: " * (N // 2) + "1" + "}]" * (N // 2) + "\n", 3, 161),
    "unclosed": (HEAD + "x: " + "[" * N + "\n", 3, None),
    "after_apostrophe": (HEAD + "x: [it's, " + "[" * N + "]" * N + "]\n", 3, None),
    "after_hash": (HEAD + "x: [a#b, " + "[" * N + "]" * N + "]\n", 3, None),
    "after_quote": (HEAD + 'x: [a"b, ' + "[" * N + "]" * N + "]\n", 3, None),
    "dashes_then_flow": (HEAD + "x:\n" + "- " * 10 + "[" * N + "]" * N + "\n", 4, None),
    "flow_over_lines": (HEAD + "x:\n" + " [\n" * N + " ]\n" * N, 3 + 65, 2),
    "top_level": ("[" * N + "]" * N + "\n", 1, None),
}

BOMBS: dict[str, str] = {
    "billion_laughs": HEAD
    + "a0: &a0 [lol]\n"
    + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 12)),
    "merge_bomb": HEAD
    + "m0: &m0 {k0: v}\n"
    + "".join(
        f"m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * 6) + f"], k{i}: v}}\n"
        for i in range(1, 25)
    ),
    "key_bomb": HEAD
    + "a0: &a0 [lol]\n"
    + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9))
    + "b: {? *a8 : 1}\n",
}


@pytest.mark.parametrize("name", sorted(DEEP))
def test_30000_levels_of_nesting_are_rejected_before_parsing(name: str, tmp_path: Path) -> None:
    document, line, column = DEEP[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(document)
    with pytest.raises(SpecError) as caught:
        load_spec_file(path)
    assert caught.value.line == line
    assert caught.value.column == column if column is not None else caught.value.column


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_alias_bombs_are_rejected(name: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text(BOMBS[name], name)
    assert caught.value.line is not None


def test_a_file_over_the_size_cap_is_rejected_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    filler = "# " + "x" * 98 + "\n"
    with path.open("w") as fh:
        fh.write(HEAD)
        fh.write(filler * (3 * MAX_SPEC_BYTES // len(filler)))
    with pytest.raises(SpecError) as caught:
        load_spec_file(path)
    assert caught.value.source == str(path)
    assert caught.value.line is None


def test_a_file_exactly_at_the_size_cap_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big-but-fine.yaml"
    body = HEAD.encode()
    path.write_bytes(body + b"#" * (MAX_SPEC_BYTES - len(body) - 1) + b"\n")
    assert path.stat().st_size == MAX_SPEC_BYTES
    assert load_spec_file(path).step_type == "A"


def test_unreadable_paths_are_spec_errors(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.yaml", tmp_path):
        with pytest.raises(SpecError) as caught:
            load_spec_file(path)
        assert caught.value.source == str(path)


CHILD = r"""
import json, sys
if sys.argv[1] == "python":
    import yaml
    del yaml.CSafeLoader, yaml.CSafeDumper  # force the pure-Python parser
from regman.errors import SpecError
from regman.specfile import load_spec_text
cases = json.load(sys.stdin)
out = {}
for name, text in cases.items():
    try:
        load_spec_text(text, name)
        out[name] = "loaded"
    except SpecError as e:
        out[name] = [e.line, e.column]
    except BaseException as e:
        out[name] = "escaped: " + type(e).__name__
print(json.dumps(out))
"""


@pytest.mark.parametrize("backend", ["libyaml", "python"])
def test_deep_nesting_and_bombs_do_not_crash_the_interpreter(backend: str) -> None:
    cases = {name: doc for name, (doc, _, _) in DEEP.items()} | BOMBS
    child = subprocess.run(
        [sys.executable, "-c", CHILD, backend],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    assert child.returncode == 0, child.stderr[-2000:]
    results = json.loads(child.stdout)
    for name, (_, line, column) in DEEP.items():
        assert isinstance(results[name], list), (name, results[name])
        assert results[name][0] == line, name
        if column is not None:
            assert results[name][1] == column, name
    for name in BOMBS:
        assert isinstance(results[name], list), (name, results[name])


# --- valid tricky files -----------------------------------------------------------------
VALID_FILES = sorted(p.name for p in VALID.glob("*.yaml"))


def test_valid_corpus_is_there() -> None:
    assert len(VALID_FILES) >= 8


@pytest.mark.parametrize("name", VALID_FILES)
def test_valid_tricky_file_loads_and_round_trips(name: str) -> None:
    spec = load_spec_file(VALID / name)
    text = spec.to_yaml()
    again = load_spec_text(text, "round-trip")
    assert again == spec
    assert again.to_yaml() == text
    assert StepSpecification.model_validate(spec.model_dump()) == spec


# --- only safe YAML loading ---------------------------------------------------------------
UNSAFE = re.compile(
    r"yaml\.load\(|yaml\.load_all\(|yaml\.Loader\b|UnsafeLoader|FullLoader|unsafe_load"
    r"|yaml\.CLoader\b|yaml\.add_constructor\("
)


def test_the_package_uses_only_safe_yaml_loading() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if UNSAFE.search(line):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_unsafe_pattern_catches_what_it_should() -> None:
    for bad in (
        "yaml.load(text)",
        "yaml.Loader",
        "Loader=yaml.UnsafeLoader",
        "yaml.FullLoader",
        "yaml.unsafe_load(x)",
    ):
        assert UNSAFE.search(bad), bad
    assert not UNSAFE.search("yaml.safe_load(text)")


def test_merge_keys_let_an_entry_override_shared_defaults() -> None:
    spec = load_spec_file(VALID / "anchors_and_merge_keys.yaml")
    assert spec.dependencies["eval_data"].required is False
    assert spec.dependencies["model_input"].required is True
    assert spec.dependencies["model_input"].dependency_type.value == "model_artifacts"
    assert spec.dependencies["eval_data"].semantic_keywords == ["data", "processed"]


def test_quoted_yaml_1_1_words_stay_text() -> None:
    spec = load_spec_file(VALID / "quoted_yaml11_words.yaml")
    assert spec.step_type == "NO"
    assert spec.job_type == "12:30"
    assert spec.description == "on"
    assert spec.dependencies["yes"].compatible_sources == ["NO", "0777", "off", "1e3", "null"]
    assert list(spec.outputs) == ["0777"]


def test_utf8_bom_and_crlf_do_not_leak_into_values() -> None:
    assert load_spec_file(VALID / "utf8_bom.yaml").step_type == "CradleDataLoading"
    assert load_spec_file(VALID / "crlf_line_endings.yaml").step_type == "CurrencyConversion"


def _depth(value: Any) -> int:
    """Deepest node (root = 0), counting mapping keys as nodes like the spec loader does."""
    if isinstance(value, dict):
        return 1 + max((max(_depth(k), _depth(v)) for k, v in value.items()), default=-1)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=-1)
    return 0


_scalars = st.one_of(st.integers(), st.text(max_size=5), st.none(), st.booleans())
_trees = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=40,
)


@settings(max_examples=60, deadline=None)
@given(tree=_trees, flow=st.sampled_from([None, True, False]), indent=st.sampled_from([2, 4]))
def test_the_cheap_nesting_bound_never_underestimates(tree: Any, flow: Any, indent: int) -> None:
    text = yaml.safe_dump(tree, default_flow_style=flow, indent=indent)
    assert _nesting_bound(text) >= _depth(tree)


def test_integers_of_thousands_of_digits_are_refused_with_their_location(tmp_path: Path) -> None:
    cases = {
        "digits": "9" * 5000,
        "negative": "-" + "1" * 5000,
        "hex": "0x" + "f" * 5000,
        "sexagesimal": "1" + ":59" * 3000,
        "sexagesimal_float": "1" + ":59" * 3000 + ".5",
    }
    for name, value in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"{HEAD}description: x\nextra_number: {value}\n")
        with pytest.raises(SpecError) as caught:
            load_spec_file(path)
        assert (caught.value.line, caught.value.column) == (4, 15), (name, str(caught.value))
    # short ones still load (YAML 1.1 sexagesimal included)
    path = tmp_path / "fine.yaml"
    path.write_text(f"{HEAD}extra_a: 1:30:00\nextra_b: {'9' * 90}\nextra_c: 1.5\n")
    load_spec_file(path)


# =========================================================================================
# Part 2: the store's own files
# =========================================================================================

TRAINING = EXAMPLES / "training_pipeline"
LOAD = TRAINING / "data_loading_training.step.yaml"
TRAIN = TRAINING / "training.step.yaml"
SECRET = "the-secret-outside-the-store"
posix_only = pytest.mark.skipif(os.name != "posix", reason="symlinks, FIFOs, modes: POSIX")
EXIT_INTERNAL = 70


class Cli:
    """The CLI in-process on one store; every run checked for a documented exit."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.runner = CliRunner()

    def __call__(self, *args: str, codes: tuple[int, ...] = (0,), input: str | None = None) -> Any:
        result = self.runner.invoke(app, ["--store", str(self.store), *args], input=input)
        text = f"{args}: exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
        assert result.exit_code != EXIT_INTERNAL, text
        assert "Traceback" not in result.stderr, text
        assert result.exit_code in codes, text
        if result.exit_code != 0 and args[0] != "doctor":
            assert result.stderr.startswith("error: ") or "warning" in result.stderr, text
        return result


def run_child_cli(
    store: Path, *args: str, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process: a hang is a timeout here, not a stuck test run."""
    env = {**os.environ, "REGMAN_HOME": str(store), "REGMAN_LOCK_TIMEOUT": "5"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE.parent), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "regman", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def in_process(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = CliRunner().invoke(app, ["--store", str(store), *args])
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    """A sentinel folder next to the store: no attack may read, write or delete in it."""
    folder = tmp_path / "outside"
    (folder / "sub").mkdir(parents=True)
    (folder / "keep.txt").write_text("must survive\n")
    (folder / "sub" / "spec.yaml").write_text(f"step_type: {SECRET}\nnode_type: singular\n")
    before = snapshot(folder)
    yield folder
    after = {
        k: v
        for k, v in snapshot(folder).items()
        if os.path.normpath(k).split(os.sep)[0] not in COPIES
    }
    assert after == before, "something outside the store was changed"
    # nothing new appeared next to the store either (e.g. a link target created)
    assert {p.name for p in tmp_path.iterdir()} <= EXPECTED_SIBLINGS


COPIES = {"copy", "trash-copy"}  # copies of store folders a test links to: it checks them


EXPECTED_SIBLINGS = {"store", "regman-home", "xdg-data", "other", "outside", "cwd"}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """ctx: load and train (revisions 1, 2); gone: cleared (in the trash)."""
    root = tmp_path / "store"
    cli = Cli(root)
    cli("register", "ctx", "load", str(LOAD))
    cli("register", "ctx", "train", str(TRAIN))
    cli("register", "gone", "load", str(LOAD))
    cli("clear", "gone", "--yes")
    os.chmod(root, 0o755)
    return root


ALL_COMMANDS: list[tuple[str, ...]] = [
    ("contexts", "list", "--json"),
    ("stats", "--json"),
    ("info", "--json"),
    ("contexts", "show", "ctx", "--json"),
    ("show", "ctx", "load"),
    ("history", "ctx", "--json"),
    ("register", "ctx", "extra", str(LOAD)),
    ("remove", "ctx", "train"),
    ("restore", "ctx", "train"),
    ("rollback", "ctx", "--to", "1", "--yes"),
    ("clear", "ctx", "--yes"),
    ("restore", "ctx"),
    ("trash", "list", "--json"),
    ("restore", "gone"),
    ("trash", "empty", "--yes"),
    ("clear", "ctx", "--purge", "--yes"),
    ("register", "ctx", "load", str(LOAD)),
    ("doctor",),
    ("doctor", "--repair"),
    ("doctor",),
]


def every_command(cli: Cli, codes: tuple[int, ...] = (0, 1, 3)) -> dict[tuple[str, ...], int]:
    """Run every command a user has; each must end with a documented exit code."""
    return {args: cli(*args, codes=codes).exit_code for args in ALL_COMMANDS}


def write_stats_cache(root: Path) -> Path:
    """Have the stats cache written now (readers only write it after many fresh reads)."""
    from regman.store import FileStore
    from regman.store.core import iter_heads
    from regman.store.summary import dump, entry_of

    st = FileStore(root)
    entries = {}
    for name, head in iter_heads(st):
        assert head is not None
        entries[name] = entry_of(st.backend.head_token(name), head)
    st.backend.write_cache(SUMMARY_NAME, dump(entries))
    path = root / "cache" / SUMMARY_NAME
    assert path.is_file()
    return path


def head_doc(store: Path, context: str = "ctx") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((store / "contexts" / context / "head.json").read_text())
    return doc


def write_head(store: Path, doc: dict[str, Any], context: str = "ctx") -> None:
    (store / "contexts" / context / "head.json").write_text(json.dumps(doc))


# -- names read from store files --------------------------------------------------------
def test_a_head_naming_its_context_outside_is_damage_not_a_path(store: Path, outside: Path) -> None:
    doc = head_doc(store)
    doc["context"] = "../../outside"
    write_head(store, doc)
    cli = Cli(store)
    result = cli("register", "ctx", "extra", str(LOAD), codes=(3,))
    assert "damaged" in result.stderr
    cli("show", "ctx", "load", codes=(3,))
    cli("clear", "ctx", "--purge", "--yes", codes=(3,))
    assert cli("doctor", codes=(1,)).exit_code == 1
    cli("doctor", "--repair")  # rebuilt from its records
    cli("doctor")
    assert cli("show", "ctx", "load").stdout
    every_command(cli)


@pytest.mark.parametrize("where", ["steps", "removed", "changes", "record"])
def test_a_step_named_outside_in_a_store_file_is_damage(
    store: Path, outside: Path, where: str
) -> None:
    evil = "../../outside/sub"
    cli = Cli(store)
    cli("remove", "ctx", "train")  # revision 3: train is restorable
    doc = head_doc(store)
    if where == "steps":
        doc["steps"][evil] = doc["steps"].pop("load")
    elif where == "removed":
        doc["removed"][evil] = doc["removed"].pop("train")
    elif where == "changes":
        doc["last"]["changes"][evil] = doc["last"]["changes"].pop("train")
    if where == "record":
        path = store / "contexts" / "ctx" / "revisions" / "1.json"
        record = json.loads(path.read_text())
        record["changes"][evil] = record["changes"].pop("load")
        path.write_text(json.dumps(record))
        cli("history", "ctx", codes=(3,))
        cli("rollback", "ctx", "--to", "1", "--yes", codes=(3,))
        cli("doctor", codes=(1,))
    else:
        write_head(store, doc)
        for args in [
            ("register", "ctx", "extra", str(LOAD)),
            ("remove", "ctx", "load", "--purge", "--yes"),
            ("restore", "ctx", "train"),
            ("clear", "ctx", "--purge", "--yes"),
            ("trash", "empty", "--yes"),
            ("show", "ctx", "load"),
        ]:
            cli(*args, codes=(3,))
        cli("doctor", codes=(1,))
        cli("doctor", "--repair")  # the head is rebuilt from the intact records
        cli("doctor")
        assert (
            sorted(json.loads(cli("contexts", "show", "ctx", "--json").stdout)["steps"]) == ["load"]
            or "load" in cli("contexts", "show", "ctx").stdout
        )
    every_command(cli)


def test_a_context_folder_with_an_invalid_name_is_ignored(store: Path, outside: Path) -> None:
    (store / "contexts" / "Bad Name").mkdir()
    (store / "contexts" / "Bad Name" / "head.json").write_text("{}")
    cli = Cli(store)
    assert json.loads(cli("contexts", "list", "--json").stdout)[0]["name"] == "ctx"
    report = json.loads(cli("doctor", "--json", codes=(1,)).stdout)
    assert any("not a valid context name" in item["problem"] for item in report["items"])
    every_command(cli, codes=(0, 1, 3))


# -- symbolic links -----------------------------------------------------------------------
def replace_with_link(path: Path, target: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to(target)


@posix_only
@pytest.mark.parametrize(
    "link",
    [
        "contexts/ctx",
        "contexts/ctx/specs",
        "contexts/ctx/specs/load",
        "contexts/ctx/revisions",
        "contexts",
        "cache",
        "locks",
    ],
)
def test_a_symlinked_folder_is_never_followed(store: Path, outside: Path, link: str) -> None:
    # The link points at a copy of the real folder outside: a store that followed it
    # would see a valid store there and read, write or purge it.
    cli = Cli(store)
    write_stats_cache(store)
    real = store / link
    copy = outside / "copy"
    shutil.copytree(real, copy, symlinks=True)
    replace_with_link(real, copy)
    before = snapshot(outside)
    if link in ("contexts", "contexts/ctx", "contexts/ctx/specs", "contexts/ctx/specs/load"):
        result = cli("show", "ctx", "load", codes=(1, 3))  # never read through the link
        assert "load" not in result.stdout
    every_command(cli)
    assert snapshot(outside) == before
    shutil.rmtree(copy)
    # the outside fixture checks the rest


@posix_only
def test_a_symlinked_spec_file_is_not_shown(store: Path, outside: Path) -> None:
    specs = store / "contexts" / "ctx" / "specs" / "load"
    (spec,) = specs.iterdir()
    replace_with_link(spec, outside / "sub" / "spec.yaml")
    cli = Cli(store)
    result = cli("show", "ctx", "load", codes=(3,))
    assert SECRET not in result.stdout + result.stderr
    assert "link" in result.stderr
    result = cli("export", "ctx", str(store.parent / "other"), codes=(3,))
    assert (
        not list((store.parent / "other").glob("*")) if (store.parent / "other").exists() else True
    )
    cli("doctor", codes=(1,))
    every_command(cli)


@posix_only
@pytest.mark.parametrize("what", ["head", "temp", "spec-object", "marker", "lock", "cache"])
def test_a_dangling_symlink_never_creates_its_target(
    store: Path, outside: Path, tmp_path: Path, what: str
) -> None:
    target = outside / "created-by-regman"
    ctx = store / "contexts" / "ctx"
    cli = Cli(store)
    write_stats_cache(store)
    if what == "head":
        replace_with_link(ctx / "head.json", target)
    elif what == "temp":
        (ctx / "specs" / "load" / ".tmp-999-1-1").symlink_to(target)
    elif what == "spec-object":
        # the object the next register of this text would create (put-if-absent)
        from regman.specfile import load_spec_file as load
        from regman.store.core import spec_hash, stored_text

        digest = spec_hash(stored_text(load(TRAIN), "load"))
        (ctx / "specs" / "load" / f"{digest}.yaml").symlink_to(target)
    elif what == "marker":
        replace_with_link(store / "regman-store.json", target)
    elif what == "lock":
        replace_with_link(store / "locks" / "ctx.lock", target)
    elif what == "cache":
        replace_with_link(store / "cache" / SUMMARY_NAME, target)
    every_command(cli)
    cli("register", "ctx", "load", str(TRAIN), codes=(0, 1, 3))
    cli("doctor", "--repair", codes=(0, 1, 3))
    assert not target.exists() and not target.is_symlink()


# -- FIFOs, devices, huge files -------------------------------------------------------------
def fifo_or_device_cases() -> list[str]:
    return ["head", "spec", "marker", "cache", "record", "lock"]


def special_path(store: Path, what: str) -> Path:
    ctx = store / "contexts" / "ctx"
    return {
        "head": ctx / "head.json",
        "spec": next((ctx / "specs" / "load").iterdir()),
        "marker": store / "regman-store.json",
        "cache": store / "cache" / SUMMARY_NAME,
        "record": ctx / "revisions" / "1.json",
        "lock": store / "locks" / "ctx.lock",
    }[what]


@posix_only
@pytest.mark.parametrize(
    ("what", "kind"),
    [
        (what, kind)
        for kind in ("fifo", "dev-zero", "sparse-huge")
        for what in fifo_or_device_cases()
        if (what, kind) != ("lock", "sparse-huge")  # a lock file's size does not matter
    ],
)
def test_fifos_devices_and_huge_files_never_hang_nor_stream(
    store: Path, outside: Path, what: str, kind: str
) -> None:
    write_stats_cache(store)
    path = special_path(store, what)
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    else:
        with open(path, "wb") as f:  # a sparse 128 MiB file: over every cap, cheap on disk
            f.truncate(128 * 1024 * 1024)
    commands_for: dict[str, list[tuple[str, ...]]] = {
        "head": [("stats", "--json"), ("show", "ctx", "load"), ("register", "ctx", "x", str(LOAD))],
        "spec": [("show", "ctx", "load"), ("export", "ctx", str(store.parent / "other"))],
        "marker": [("contexts", "list"), ("register", "ctx", "x", str(LOAD))],
        "cache": [("stats", "--json"), ("contexts", "list", "--json")],
        "record": [("history", "ctx"), ("rollback", "ctx", "--to", "1", "--yes")],
        "lock": [("register", "ctx", "x", str(LOAD))],
    }
    commands = commands_for[what]
    for args in [*commands, ("doctor",)]:
        began = time.monotonic()
        # a FIFO risks a hang: a child with a timeout; a link to a device or a huge
        # file is refused before reading: in-process
        runner = run_child_cli if kind == "fifo" else in_process
        result = runner(store, *args)
        assert time.monotonic() - began < 25
        assert result.returncode in (0, 1, 3), (args, result.returncode, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        strict = not (what == "record" and args[0] == "rollback") or result.returncode
        if what != "cache" and args[0] != "doctor" and strict:
            assert result.returncode == 3, (args, result.stderr)
    if what == "cache":  # derived: ignored and rebuilt
        result = in_process(store, "stats", "--json")
        assert result.returncode == 0 and "ctx" in json.loads(result.stdout)


# -- deep JSON, null versions, lying caches ------------------------------------------------
DEEP_JSON = "[" * 1000 + "]" * 1000  # 2 KB, far deeper than the JSON parser's recursion limit


@pytest.mark.parametrize("what", ["marker", "head", "cache", "record"])
@pytest.mark.parametrize("shape", ["bare", "in-object"])
def test_deeply_nested_json_is_a_clear_error_or_a_repair(
    store: Path, outside: Path, what: str, shape: str
) -> None:
    cli = Cli(store)
    write_stats_cache(store)
    path = special_path(store, what)
    text = DEEP_JSON if shape == "bare" else '{"format_version": 2, "contexts": ' + DEEP_JSON + "}"
    if shape == "in-object" and what == "head":
        text = json.dumps(head_doc(store))[:-1] + ', "steps": ' + DEEP_JSON + "}"
    path.write_text(text)
    assert len(text) >= 2000
    if what == "marker":
        cli("contexts", "list", codes=(3,))
        cli("register", "ctx", "x", str(LOAD), codes=(3,))
        cli("doctor", codes=(1,))
        cli("doctor", "--repair")
    elif what == "head":
        cli("stats", codes=(3,))
        cli("show", "ctx", "load", codes=(3,))
        cli("register", "ctx", "x", str(LOAD), codes=(3,))
        cli("doctor", codes=(1,))
        cli("doctor", "--repair")
    elif what == "cache":
        assert "ctx" in json.loads(cli("stats", "--json").stdout)
        assert json.loads(cli("info", "--json").stdout)["contexts"] == 1
    else:
        cli("history", "ctx", codes=(3,))
        cli("doctor", codes=(1,))
    if what != "record":
        cli("doctor")
        assert cli("show", "ctx", "load").stdout
    every_command(cli)


def test_a_stats_cache_that_lies_is_not_believed_blindly(store: Path, outside: Path) -> None:
    """A cache entry with the right token but garbage values: no crash in any reader.

    Also garbage step types: indices out of the table, or not numbers."""
    cli = Cli(store)
    cache = write_stats_cache(store)
    doc = json.loads(cache.read_text())
    assert doc["contexts"]["ctx"][2][0] == 2  # step_count, the first of doc["keys"]
    sound = doc["contexts"]["ctx"][2]
    for garbage in ([], ["many", *sound[1:]], [*sound[:9], None, *sound[10:]], [[1]] * 14):
        doc["contexts"]["ctx"][2] = garbage
        cache.write_text(json.dumps(doc))
        for args in [("stats",), ("contexts", "list"), ("info",), ("trash", "list")]:
            cli(*args)
        # the entry is not believed: the numbers come from the head
        assert json.loads(cli("stats", "--json").stdout)["ctx"]["step_count"] == 2
        listed = json.loads(cli("contexts", "list", "--json").stdout)
        assert [(c["name"], c["revision"]) for c in listed] == [("ctx", 2)]
    doc["contexts"]["ctx"][2] = sound
    for types in ([99], ["x"], None, [-1]):
        doc["contexts"]["ctx"][3] = types
        cache.write_text(json.dumps(doc))
        assert "total (1)" in cli("stats").stdout
        manager = regman.RegistryManager(store)  # the types come from the head
        assert manager.distinct_step_types() == manager.step_types("ctx") != []
        assert json.loads(cli("stats", "--json").stdout)["ctx"]["step_count"] == 2


def test_a_marker_with_a_null_version_is_damage_not_an_old_store(store: Path) -> None:
    (store / "regman-store.json").write_text('{"format_version": null}')
    cli = Cli(store)
    for args in [("contexts", "list"), ("register", "ctx", "x", str(LOAD)), ("info",)]:
        result = cli(*args, codes=(3,))
        assert "upgrade regman" not in result.stderr
        assert "damaged" in result.stderr
    cli("doctor", "--repair")
    cli("doctor")
    assert json.loads(cli("contexts", "list", "--json").stdout)[0]["name"] == "ctx"


@pytest.mark.parametrize("version", ["0", "-1", "true", '"2"', "2.0", "1e400", "9" * 5000])
def test_every_other_bad_marker_version_is_damage(store: Path, version: str) -> None:
    (store / "regman-store.json").write_text('{"format_version": ' + version + "}")
    result = Cli(store)("contexts", "list", codes=(3,))
    assert "upgrade regman" not in result.stderr


# -- a format-1 store under attack (the upgrade reads old files) -----------------------------
FORMAT1 = CORPUS / "format1-store"


@posix_only
def test_format1_trash_symlinked_outside_is_never_followed(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "store"
    shutil.copytree(FORMAT1, root)
    copy = outside / "trash-copy"
    shutil.copytree(root / "trash", copy)
    replace_with_link(root / "trash", copy)
    before = snapshot(outside)
    cli = Cli(root)
    cli("register", "production", "extra", str(LOAD), codes=(0, 3))
    cli("trash", "empty", "--yes", codes=(0, 1, 3))
    cli("doctor", "--repair", codes=(0, 1, 3))
    assert snapshot(outside) == before
    shutil.rmtree(copy)


@posix_only
def test_format1_dangling_changing_mark_never_creates_its_target(
    tmp_path: Path, outside: Path
) -> None:
    root = tmp_path / "store"
    shutil.copytree(FORMAT1, root)
    target = outside / "created-by-regman"
    (root / "contexts" / "production" / ".changing").symlink_to(target)
    cli = Cli(root)
    cli("register", "production", "extra", str(LOAD))
    cli("doctor")
    assert not target.exists()
    assert "extra" in json.loads(cli("contexts", "show", "production", "--json").stdout)["steps"]


@posix_only
def test_format1_index_naming_outside_is_never_used(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "store"
    shutil.copytree(FORMAT1, root)
    index = root / "contexts" / "production" / "context.json"
    doc = json.loads(index.read_text())
    doc["name"] = "../../outside"
    index.write_text(json.dumps(doc))
    cli = Cli(root)
    cli("register", "production", "extra", str(LOAD))
    cli("remove", "production", "extra")
    cli("clear", "production", "--purge", "--yes")
    cli("doctor")


# -- the store folder and its location ---------------------------------------------------------
@posix_only
def test_a_store_folder_writable_by_others_is_warned_about(store: Path) -> None:
    cli = Cli(store)
    assert "writable by other" not in cli("info").stderr
    os.chmod(store, 0o777)
    try:
        assert "writable by other" in cli("info").stderr
        report = json.loads(cli("doctor", "--json", codes=(0, 1)).stdout)
        assert any("writable by other" in i["problem"] for i in report["items"])
        os.chmod(store, 0o1777)  # sticky, like /tmp: others cannot replace our files
        assert "writable by other" not in cli("info").stderr
    finally:
        os.chmod(store, 0o755)


# s3:// has a backend now (tests/store/test_s3_backend.py checks it never makes a folder)
@pytest.mark.parametrize("url", ["gs://b", "GS://b/p", "http://x/y", "ftp://h/p"])
def test_an_unknown_url_scheme_is_refused_and_creates_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    from regman.errors import InvalidInputError
    from regman.store import open_store

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    with pytest.raises(InvalidInputError):
        open_store(url)
    with pytest.raises(InvalidInputError):
        regman.RegistryManager(url).list_contexts()
    runner = CliRunner()
    for args in (["--store", url], []):
        env = {} if args else {"REGMAN_HOME": url}
        for command in (["register", "ctx", "load", str(LOAD)], ["contexts", "list"]):
            result = runner.invoke(app, [*args, *command], env=env)
            assert result.exit_code == 2, (args, command, result.stderr)
            assert "unknown store location" in result.stderr
    assert list(cwd.iterdir()) == []
    assert not any(p.name.endswith(":") for p in tmp_path.rglob("*"))


@posix_only
@pytest.mark.parametrize("kind", ["fifo", "folder", "link", "damaged-and-a-record-missing"])
def test_doctor_repair_never_deletes_a_context_whose_head_it_cannot_read(
    store: Path, outside: Path, kind: str
) -> None:
    ctx = store / "contexts" / "ctx"
    head = ctx / "head.json"
    Cli(store)("register", "ctx", "extra", str(LOAD))  # revision 3: records 1 and 2 exist
    if kind == "damaged-and-a-record-missing":
        (ctx / "revisions" / "1.json").unlink()  # the head cannot be rebuilt from records
    before = {k: v for k, v in snapshot(ctx).items() if not k.endswith("head.json")}
    head.unlink()
    if kind == "fifo":
        os.mkfifo(head)
    elif kind == "folder":
        head.mkdir()
    elif kind == "link":
        head.symlink_to(outside / "keep.txt")
    else:
        head.write_text("{damaged")
    cli = Cli(store)
    report = json.loads(cli("doctor", "--repair", "--json", codes=(1,)).stdout)
    assert any(i["path"] == "ctx: head" and not i["repaired"] for i in report["items"]), report
    if head.is_dir() and not head.is_symlink():
        head.rmdir()
    else:
        head.unlink()  # (snapshot would block on the FIFO)
    after = snapshot(ctx)
    lost = sorted(k for k in before if k not in after)
    assert lost == [], f"doctor --repair deleted the history of a context: {lost}"


def test_doctor_repair_rebuilds_a_deleted_head_from_its_records(store: Path) -> None:
    """A context whose head.json was deleted is not a first write that did not land."""
    ctx = store / "contexts" / "ctx"
    cli = Cli(store)
    cli("register", "ctx", "extra", str(LOAD))
    cli("remove", "ctx", "extra")  # revision 4; the record of revision 3 is written
    shown = cli("show", "ctx", "load").stdout
    (ctx / "head.json").unlink()
    cli("show", "ctx", "load", codes=(1,))
    cli("doctor", codes=(1,))
    cli("doctor", "--repair")
    cli("doctor")
    assert cli("show", "ctx", "load").stdout == shown
    assert json.loads(cli("history", "ctx", "--json").stdout)[0]["revision"] >= 3
