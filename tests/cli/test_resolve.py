"""``regman resolve`` and ``regman explain`` through CliRunner, on the example pipeline."""

from __future__ import annotations

import json
import re

import pytest

from tests.cli.conftest import TRAINING, Run

STEPS = [
    "data_loading_calibration",
    "data_loading_training",
    "preprocessing_calibration",
    "preprocessing_training",
    "training",
    "model_evaluation",
    "packaging",
    "payload",
    "registration",
]


@pytest.fixture
def pipeline(run: Run) -> Run:
    run("import", "training_pipeline", *map(str, sorted(TRAINING.glob("*.step.yaml"))))
    return run


def test_table(pipeline: Run) -> None:
    result = pipeline("resolve", "training_pipeline")
    lines = result.stdout.splitlines()
    row = next(line for line in lines if "training.input_path " in line)
    assert re.search(
        r"training\.input_path\s+│ <- │ preprocessing_training\.processed_data\s+│", row
    )
    assert re.search(r"│\s+0\.9\d │", row)
    optional = next(line for line in lines if "packaging.inference_scripts_input" in line)
    assert "unresolved (optional)" in optional and "UNRESOLVED" not in result.stdout
    assert lines[-1] == "execution order: " + " -> ".join(STEPS)
    assert "wired 11 of 13 dependencies; 0 required and 2 optional unresolved" in result.stderr


def test_json_is_exactly_the_documented_document(pipeline: Run) -> None:
    document = json.loads(pipeline("resolve", "training_pipeline", "--json").stdout)
    assert set(document) == {"context", "edges", "unresolved", "order"}
    assert document["context"] == "training_pipeline"
    assert document["order"] == STEPS
    for edge in document["edges"]:
        assert set(edge) == {
            "consumer",
            "dependency",
            "provider",
            "output",
            "score",
            "tied_with",
            "notes",
        }
        assert edge["tied_with"] is None or isinstance(edge["tied_with"], str)
        assert 0.5 <= edge["score"] <= 1
    edges = {
        (e["consumer"], e["dependency"]): (e["provider"], e["output"]) for e in document["edges"]
    }
    assert edges[("training", "input_path")] == ("preprocessing_training", "processed_data")
    assert edges[("model_evaluation", "processed_data")] == (
        "preprocessing_calibration",
        "processed_data",
    )
    assert edges[("registration", "PackagedModel")] == ("packaging", "packaged_model")
    assert len(edges) == 11
    assert document["unresolved"] == [
        {"consumer": "packaging", "dependency": "inference_scripts_input", "required": False},
        {"consumer": "training", "dependency": "hyperparameters_s3_uri", "required": False},
    ]


def test_unresolved_required_exits_1_and_json_is_still_printed(pipeline: Run) -> None:
    result = pipeline("resolve", "training_pipeline", "training", "packaging", "--json", code=1)
    document = json.loads(result.stdout)
    assert document["edges"] == [
        {
            "consumer": "packaging",
            "dependency": "model_input",
            "provider": "training",
            "output": "model_output",
            "score": document["edges"][0]["score"],
            "tied_with": None,
            "notes": [],
        }
    ]
    assert {"consumer": "training", "dependency": "input_path", "required": True} in document[
        "unresolved"
    ]
    assert "error: required dependencies unresolved: training.input_path" in result.stderr
    table = pipeline("resolve", "training_pipeline", "training", "packaging", code=1)
    row = next(line for line in table.stdout.splitlines() if "training.input_path" in line)
    assert "UNRESOLVED (required)" in row
    assert "hint: see 'regman explain training_pipeline training input_path'" in table.stderr
    tree = pipeline("resolve", "training_pipeline", "training", "--format", "tree", code=1)
    assert "input_path: UNRESOLVED (required)" in tree.stdout


def test_mermaid(pipeline: Run) -> None:
    text = pipeline("resolve", "training_pipeline", "--format", "mermaid").stdout
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    ids = dict(re.findall(r'^\s+(s\d+)\["([^"]+)"\]$', text, re.M))
    assert sorted(ids.values()) == sorted(STEPS)
    node = {name: node_id for node_id, name in ids.items()}
    edge = f'    {node["preprocessing_training"]} -->|"processed_data → input_path (0.94)"| '
    assert edge + node["training"] in lines
    assert sum(1 for line in lines if "-->|" in line) == 11
    assert any(
        line.startswith("    u")
        and "hyperparameters_s3_uri: unresolved, optional" in line
        and line.endswith(f"-.-> {node['training']}")
        for line in lines
    )


def test_dot(pipeline: Run) -> None:
    text = pipeline("resolve", "training_pipeline", "-f", "dot").stdout
    lines = text.splitlines()
    assert lines[0] == 'digraph "training_pipeline" {' and lines[-1] == "}"
    assert (
        '  "preprocessing_training" -> "training" [label="processed_data -> input_path\\n0.94"];'
        in lines
    )
    assert sum(1 for line in lines if re.match(r'  "[^"]+" -> "[^"]+" \[label=', line)) == 11
    assert all(f'  "{step}";' in lines for step in STEPS)
    assert '  "unresolved:0" -> "packaging" [style=dashed, color=grey];' in lines
    assert all(line.count('"') % 2 == 0 for line in lines)


def test_tree(pipeline: Run) -> None:
    text = pipeline("resolve", "training_pipeline", "--format", "tree").stdout
    assert text.splitlines()[0] == "training_pipeline (execution order)"
    assert "5. training (XGBoostTraining)" in text
    assert "input_path <- preprocessing_training.processed_data (0.94)" in text
    assert "hyperparameters_s3_uri: unresolved (optional)" in text


def test_threshold_option(pipeline: Run) -> None:
    document = json.loads(
        pipeline("resolve", "training_pipeline", "--json", "--threshold", "0.99", code=1).stdout
    )
    assert document["edges"] == []
    pipeline("resolve", "training_pipeline", "--threshold", "2", code=2)


def test_usage_and_lookup_errors(pipeline: Run) -> None:
    pipeline("resolve", "training_pipeline", "--json", "--format", "dot", code=2)
    missing = pipeline("resolve", "nope", code=1)
    assert missing.stderr.startswith("error: context 'nope' does not exist")
    assert missing.stdout == ""
    unknown = pipeline("resolve", "training_pipeline", "training", "ghost", code=1)
    assert "step 'ghost' is not registered" in unknown.stderr


def table_rows(text: str) -> list[str]:
    """The rows of a plain table, each with its continuation lines joined (cell by cell)."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.strip("│").split("│")]
        if cells[0] or not rows:
            rows.append(cells)
        else:
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
    return [" │ ".join(row) for row in rows]


def test_explain_table_and_json(pipeline: Run) -> None:
    result = pipeline("explain", "training_pipeline", "model_evaluation", "processed_data")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("model_evaluation.processed_data: processing_output, S3Uri")
    assert "job type: calibration (the step's own)" in lines
    assert "wired to: preprocessing_calibration.processed_data (0.95)" in lines
    rows = table_rows(result.stdout)  # prose columns wrap on a pipe: a row spans lines
    chosen = next(row for row in rows if "preprocessing_calibration.processed_data" in row)
    assert "chosen" in chosen and "compatible_sources" in chosen
    other = next(row for row in rows if "preprocessing_training.processed_data" in row)
    assert "job type" in other and "is a calibration step" in other
    assert "output(s) of an incompatible type or data type not shown" in result.stderr

    document = json.loads(
        pipeline(
            "explain", "training_pipeline", "model_evaluation", "processed_data", "--json"
        ).stdout
    )
    assert document["chosen"]["provider"] == "preprocessing_calibration"
    statuses = [(c["provider"], c["status"]) for c in document["candidates"]][:2]
    assert statuses == [
        ("preprocessing_calibration", "chosen"),
        ("preprocessing_training", "job type"),
    ]
    assert set(document["candidates"][0]["breakdown"]["components"]) == {
        "type",
        "name",
        "dependency_keywords",
        "output_keywords",
        "compatible_source",
    }


def test_explain_unresolved_and_errors(pipeline: Run) -> None:
    result = pipeline("explain", "training_pipeline", "packaging", "inference_scripts_input")
    assert "unresolved: 1 output(s) of a compatible type, none with name" in result.stdout
    assert "below threshold" in result.stdout
    limited = pipeline(
        "explain", "training_pipeline", "model_evaluation", "processed_data", "--limit", "1"
    )
    assert "more candidate(s); see --limit" in limited.stderr
    bad = pipeline("explain", "training_pipeline", "training", "nope", code=1)
    assert bad.stderr.startswith("error: step 'training' has no dependency 'nope'")
    assert "hint: its dependencies: hyperparameters_s3_uri, input_path" in bad.stderr
    pipeline("explain", "nope", "training", "input_path", code=1)


def test_empty_context(run: Run) -> None:
    run("contexts", "create", "empty")
    result = run("resolve", "empty")
    assert result.stdout == ""
    assert "context 'empty' has no steps" in result.stderr
    document = json.loads(run("resolve", "empty", "--json").stdout)
    assert document == {"context": "empty", "edges": [], "unresolved": [], "order": []}


def test_json_candidates_list_the_runners_up_as_explain_ranks_them(pipeline: Run) -> None:
    plain = json.loads(pipeline("resolve", "training_pipeline", "--json").stdout)
    assert all("candidates" not in e and "tied_with" in e for e in plain["edges"])
    full = json.loads(pipeline("resolve", "training_pipeline", "--json", "--candidates").stdout)
    assert [(e["consumer"], e["dependency"]) for e in full["edges"]] == [
        (e["consumer"], e["dependency"]) for e in plain["edges"]
    ]
    edge = next(
        e for e in full["edges"] if (e["consumer"], e["dependency"]) == ("training", "input_path")
    )
    runners_up = edge["candidates"]
    assert runners_up, "the calibration branch's processed_data competes for training"
    assert all(c["score"] <= edge["score"] for c in runners_up)
    assert ("preprocessing_calibration", "processed_data") in {
        (c["provider"], c["output"]) for c in runners_up
    }
    explained = json.loads(
        pipeline("explain", "training_pipeline", "training", "input_path", "--json").stdout
    )
    assert len(runners_up) == len(explained["candidates"]) - 1  # all but the chosen one
    assert pipeline("resolve", "training_pipeline", "--candidates", code=2).exit_code == 2
