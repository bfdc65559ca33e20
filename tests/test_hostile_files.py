"""Hostile spec files: every one is a SpecError at the right place, never a crash.

The malformed corpus lives in tests/corpus/malformed/ with the expected location of
each error in its manifest.yaml (regenerate both with
tests/corpus/generate_malformed.py). Cases too big to commit (a file over the size
cap, 30,000 levels of nesting) are generated here. Deep nesting and alias bombs
also run in a child interpreter, with libyaml and with the pure-Python parser, so
a segmentation fault would show as the child's exit status instead of killing
pytest. Tests assert on location and type, never on wording.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import regman
from regman.errors import SpecError
from regman.spec import StepSpecification
from regman.specfile import load_spec_file, load_spec_text
from regman.yamlsafe import MAX_SPEC_BYTES, _nesting_bound

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
