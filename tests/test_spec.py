"""The spec model's rules and the file layouts (the hostile corpus is in test_hostile_files)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regman import DependencySpec, DependencyType, NodeType, OutputSpec, SpecError
from regman import StepSpecification as Spec
from regman.specfile import coerce_specification, load_spec_text, spec_from_document

CURSUS = """\
step_type: XGBoostTraining
node_type: internal
spec:
  dependencies:
    input_path:
      type: training_data
      required: true
      compatible_sources: [TabularPreprocessing, ProcessingStep]
      semantic_keywords: [data, training]
      data_type: S3Uri
  outputs:
    model_output:
      type: model_artifacts
      property_path: properties.ModelArtifacts.S3ModelArtifacts
      aliases: [ModelArtifacts, model_data]
      semantic_keywords: [model, trained]
registry:
  sagemaker_step_type: Training
  builder: XGBoostTrainingStepBuilder
patterns:
  - {kind: glob, value: "*.tar.gz"}
compute:
  instance_type: ml.m5.4xlarge
contract:
  entry_point: train.py
"""


def test_cursus_file_round_trip_keeps_extra_sections(tmp_path: Path) -> None:
    spec = load_spec_text(CURSUS, "x.step.yaml")
    assert spec.dependencies["input_path"].dependency_type is DependencyType.TRAINING_DATA
    assert spec.outputs["model_output"].aliases == ["ModelArtifacts", "model_data"]
    assert list(spec.metadata) == ["registry", "patterns", "compute", "contract"]
    doc = spec.to_document()
    assert list(doc) == [
        "step_type",
        "node_type",
        "spec",
        "registry",
        "patterns",
        "compute",
        "contract",
    ]
    assert doc["patterns"] == [{"kind": "glob", "value": "*.tar.gz"}]
    path = tmp_path / "again.yaml"
    path.write_text(spec.to_yaml())
    assert Spec.from_file(path) == spec


def test_flat_layout_and_list_form() -> None:
    flat = load_spec_text(
        "step_type: Training\nnode_type: internal\n"
        "dependencies:\n  - logical_name: input_path\n    dependency_type: training_data\n"
        "outputs:\n  - logical_name: model\n    output_type: model_artifacts\n"
        "    property_path: properties.ModelArtifacts.S3ModelArtifacts\n",
        "flat.yaml",
    )
    native = load_spec_text(
        "step_type: Training\nnode_type: internal\nspec:\n  dependencies:\n    input_path:\n"
        "      type: training_data\n  outputs:\n    model:\n      type: model_artifacts\n"
        "      property_path: properties.ModelArtifacts.S3ModelArtifacts\n",
        "native.yaml",
    )
    assert flat == native


def test_enum_fields_take_enum_or_string() -> None:
    a = DependencySpec(logical_name="x", dependency_type="training_data")
    b = DependencySpec(logical_name="x", dependency_type=DependencyType.TRAINING_DATA)
    assert a == b
    assert Spec(step_type="S", node_type="singular") == Spec(
        step_type="S", node_type=NodeType.SINGULAR
    )


@pytest.mark.parametrize(
    ("node_type", "deps", "outs", "ok"),
    [
        ("source", 0, 1, True),
        ("source", 1, 1, False),
        ("source", 0, 0, False),
        ("internal", 1, 1, True),
        ("internal", 0, 1, False),
        ("internal", 1, 0, False),
        ("sink", 1, 0, True),
        ("sink", 0, 0, False),
        ("sink", 1, 1, False),
        ("singular", 0, 0, True),
        ("singular", 1, 0, False),
        ("singular", 0, 1, False),
    ],
)
def test_node_type_rules(node_type: str, deps: int, outs: int, ok: bool) -> None:
    dependencies = [
        DependencySpec(logical_name=f"d{i}", dependency_type="training_data") for i in range(deps)
    ]
    outputs = [
        OutputSpec(
            logical_name=f"o{i}", output_type="model_artifacts", property_path="properties.X"
        )
        for i in range(outs)
    ]
    fields = {
        "step_type": "S",
        "node_type": node_type,
        "dependencies": dependencies,
        "outputs": outputs,
    }
    if ok:
        assert Spec(**fields).node_type.value == node_type
    else:
        with pytest.raises(SpecError, match=f"{node_type} step"):
            Spec(**fields)
        with pytest.raises(SpecError) as info:
            spec_from_document(
                {
                    **fields,
                    "dependencies": [d.model_dump() for d in dependencies],
                    "outputs": [o.model_dump() for o in outputs],
                }
            )
        assert info.value.field == "node_type"


@pytest.mark.parametrize(("required", "ok"), [(False, True), (True, False)])
def test_a_source_may_have_optional_dependencies_only(required: bool, ok: bool) -> None:
    """cursus accepts a source whose dependencies are all optional (issue 13, item 7)."""
    text = (
        "step_type: Loader\nnode_type: source\nspec:\n  dependencies:\n"
        f"    previous_run: {{type: processing_output, required: {str(required).lower()}}}\n"
        "  outputs:\n    DATA: {type: processing_output, property_path: properties.X}\n"
    )
    if ok:
        spec = load_spec_text(text, "loader.yaml")
        assert spec.node_type is NodeType.SOURCE and list(spec.dependencies) == ["previous_run"]
    else:
        with pytest.raises(SpecError, match="no required dependencies") as info:
            load_spec_text(text, "loader.yaml")
        assert (info.value.line, info.value.field) == (2, "node_type")


@pytest.mark.parametrize("name", ["input path", "a.b", "ü", "", "x/y"])
def test_logical_name_rule(name: str) -> None:
    with pytest.raises(ValueError):
        DependencySpec(logical_name=name, dependency_type="training_data")


def test_property_path_rule() -> None:
    with pytest.raises(ValueError, match="properties"):
        OutputSpec(logical_name="o", output_type="model_artifacts", property_path="Model.Uri")


def test_duplicate_logical_name_in_list() -> None:
    with pytest.raises(SpecError, match="duplicate") as info:
        load_spec_text(
            "step_type: S\nnode_type: sink\ndependencies:\n"
            "  - {logical_name: a, type: training_data}\n"
            "  - {logical_name: a, type: training_data}\n",
            "dup.yaml",
        )
    assert info.value.line == 5


def test_unknown_key_hint_and_location() -> None:
    with pytest.raises(SpecError) as info:
        load_spec_text(
            "step_type: S\nnode_type: source\nspec:\n  outputs:\n    out:\n"
            "      type: model_artifacts\n      property_pth: properties.X\n",
            "t.yaml",
        )
    error = info.value
    assert (error.line, error.column, error.field) == (7, 7, "spec.outputs.out.property_pth")
    assert error.hint == "did you mean 'property_path'?"


def test_top_level_typo_is_an_error_not_metadata() -> None:
    with pytest.raises(SpecError, match="unknown key 'dependecies'"):
        load_spec_text("step_type: S\nnode_type: sink\ndependecies: {}\n", "t.yaml")


def test_coerce_accepts_document_or_model() -> None:
    spec = load_spec_text(CURSUS, "c.yaml")
    assert coerce_specification(spec) is spec
    assert coerce_specification(spec.to_document()) == spec
    with pytest.raises(SpecError):
        coerce_specification(42)


names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True)
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30)


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    deps = draw(st.lists(names, max_size=4, unique=True))
    outs = draw(st.lists(names, max_size=4, unique=True))
    node = {
        (False, True): "source",
        (True, True): "internal",
        (True, False): "sink",
        (False, False): "singular",
    }[(bool(deps), bool(outs))]
    types = st.sampled_from(list(DependencyType))
    return Spec(
        step_type=draw(names),
        node_type=node,
        description=draw(texts),
        dependencies=[
            DependencySpec(
                logical_name=n,
                dependency_type=draw(types),
                required=draw(st.booleans()),
                semantic_keywords=draw(st.lists(texts, max_size=3)),
                description=draw(texts),
            )
            for n in deps
        ],
        outputs=[
            OutputSpec(
                logical_name=n,
                output_type=draw(types),
                property_path=f"properties.{n}",
                aliases=draw(st.lists(names, max_size=2)),
            )
            for n in outs
        ],
        metadata=draw(
            st.dictionaries(
                st.sampled_from(["registry", "compute", "contract"]),
                st.dictionaries(names, texts | st.integers(), max_size=3),
                max_size=3,
            )
        ),
        variants=draw(
            st.dictionaries(
                st.sampled_from(["training", "calibration", "evaluation", "finetune"]),
                st.fixed_dictionaries(
                    {
                        "spec": st.fixed_dictionaries(
                            {
                                "dependencies": st.fixed_dictionaries(
                                    {
                                        n: st.fixed_dictionaries(
                                            {"semantic_keywords": st.lists(names, max_size=2)}
                                        )
                                        for n in deps[:2]
                                    }
                                )
                            }
                        )
                    }
                ),
                max_size=2,
            )
        ),
    )


@settings(max_examples=60, deadline=None)
@given(specs())
def test_yaml_round_trip_property(spec: Spec) -> None:
    assert load_spec_text(spec.to_yaml(), "prop.yaml") == spec
