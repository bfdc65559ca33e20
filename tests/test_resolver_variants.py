"""Job-type variants (issue 13, item 1): the model keeps them, a step uses its job type's.

A variant is a partial spec deep-merged over the base: ports it omits keep the base, a
port restates only what changes, lists are replaced. The spec as stored stays as stored.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regman import (
    DependencyResolver,
    RegistryManager,
    SpecError,
    StepNotFoundError,
    StepSpecification,
)
from regman.compare import diff_contexts
from regman.specfile import load_spec_text
from tests.conftest import make_spec
from tests.test_resolver import dep, out, registry_of, step, wiring

BATCH_TRANSFORM = """\
step_type: BatchTransform
node_type: internal
spec:
  dependencies:
    processed_data:
      type: processing_output
      required: true
      compatible_sources: [TabularPreprocessing]
      semantic_keywords: [data]
    model_input:
      type: model_artifacts
      required: false
  outputs:
    transform_output:
      type: processing_output
      property_path: properties.TransformOutput.S3OutputPath
      semantic_keywords: [predictions]
variants:
  training:
    spec:
      dependencies:
        processed_data:
          semantic_keywords: [training, data]
  calibration:
    spec:
      dependencies:
        processed_data:
          semantic_keywords: [calibration, data]
        model_input:
          required: true
          compatible_sources: [ModelCalibration]
"""


def test_a_variant_is_deep_merged_over_the_base() -> None:
    spec = load_spec_text(BATCH_TRANSFORM, "batch_transform.step.yaml")
    assert sorted(spec.variants) == ["calibration", "training"]
    base_dep = spec.dependencies["processed_data"]
    for job in ("calibration", "Calibration", "calib"):  # job types compare normalised
        calibration = spec.for_job_type(job)
        processed = calibration.dependencies["processed_data"]
        # restated fields change, lists are replaced, the rest is the base's
        assert processed.semantic_keywords == ["calibration", "data"]
        assert processed.compatible_sources == base_dep.compatible_sources
        assert processed.required is True
        assert calibration.dependencies["model_input"].required is True  # optional -> required
        assert calibration.dependencies["model_input"].compatible_sources == ["ModelCalibration"]
        assert calibration.outputs == spec.outputs  # a port the variant omits keeps the base
        assert calibration.variants == {}
    training = spec.for_job_type("training")
    assert training.dependencies["model_input"].required is False
    # no variant for the job type (or no job type): the base itself
    assert spec.for_job_type("inference") is spec
    assert spec.for_job_type(None) is spec
    # the stored spec stays as stored
    assert spec.dependencies["processed_data"].semantic_keywords == ["data"]


def test_variants_round_trip_through_yaml_and_the_store(tmp_path: Path) -> None:
    spec = load_spec_text(BATCH_TRANSFORM, "batch_transform.step.yaml")
    again = load_spec_text(spec.to_yaml(), "again.yaml")
    assert again == spec and again.variants == spec.variants
    registry = RegistryManager(tmp_path).get_registry("inference")
    assert registry is not None
    registry.register_specification("BatchTransform_calibration", spec)
    fresh = RegistryManager(tmp_path).get_registry("inference")
    assert fresh is not None
    stored = fresh.get_specification("BatchTransform_calibration")
    assert stored is not None and stored.variants == spec.variants
    assert stored.dependencies["model_input"].required is False  # as stored, not effective
    assert stored.for_job_type("calibration").dependencies["model_input"].required is True


@pytest.mark.parametrize(
    ("variants", "problem", "line"),
    [
        ("variants: [training]\n", "'variants' maps a job type to a partial spec", 18),
        ("variants:\n  training: 3\n", "variant 'training': a variant is a mapping", 19),
        (
            "variants:\n  training:\n    step_type: Other\n",
            "variant 'training': unknown key 'step_type'",
            20,
        ),
        (
            "variants:\n  training:\n    spec:\n      dependencies:\n"
            "        processed_data:\n          required: maybe\n",
            "variant 'training': Input should be a valid boolean",
            23,
        ),
        (
            "variants:\n  training:\n    spec:\n      dependencies:\n"
            "        new_input:\n          required: false\n",
            "variant 'training': missing required field 'type'",  # a new port is complete
            23,
        ),
    ],
)
def test_a_bad_variant_is_reported_where_it_is(variants: str, problem: str, line: int) -> None:
    text = BATCH_TRANSFORM.split("variants:")[0] + variants
    with pytest.raises(SpecError, match=problem) as info:
        load_spec_text(text, "bt.yaml")
    assert info.value.source == "bt.yaml" and info.value.line == line


def test_a_variant_built_in_python_is_validated() -> None:
    with pytest.raises(SpecError, match="variant 'training'"):
        StepSpecification(
            step_type="Prep",
            node_type="source",
            outputs=[out("data", "processing_output")],
            variants={"training": {"spec": {"outputs": {"data": {"type": "nonsense"}}}}},
        )


def variant_pipeline() -> dict[str, StepSpecification]:
    transform = load_spec_text(BATCH_TRANSFORM, "batch_transform.step.yaml")
    return {
        "TabularPreprocessing_calibration": step(
            "TabularPreprocessing", outs=[out("processed_data", "processing_output")]
        ),
        "TabularPreprocessing_training": step(
            "TabularPreprocessing", outs=[out("processed_data", "processing_output")]
        ),
        "ModelCalibration": step(
            "ModelCalibration",
            deps=[dep("model", "model_artifacts", sources=["XGBoostTraining"])],
            outs=[out("calibrated", "model_artifacts")],
        ),
        "XGBoostTraining": step("XGBoostTraining", outs=[out("model", "model_artifacts")]),
        "BatchTransform_calibration": transform,
        "BatchTransform_training": transform,
    }


def test_resolving_uses_each_steps_variant() -> None:
    specs = variant_pipeline()
    resolver = DependencyResolver(registry_of(specs))
    report = resolver.get_resolution_report()
    edges = wiring(report)
    # only the calibration variant names ModelCalibration as a source; the base has no
    # evidence for model_input, so without variants it stays unwired for both
    assert edges[("BatchTransform_calibration", "model_input")] == (
        "ModelCalibration",
        "calibrated",
    )
    assert ("BatchTransform_training", "model_input") not in edges
    (gap,) = [u for u in report.unresolved if u.consumer == "BatchTransform_training"]
    assert gap.dependency == "model_input" and gap.required is False
    for job in ("calibration", "training"):
        assert edges[(f"BatchTransform_{job}", "processed_data")] == (
            f"TabularPreprocessing_{job}",
            "processed_data",
        )
    explanation = resolver.explain("BatchTransform_calibration", "model_input")
    assert explanation.required is True  # the variant made it required
    assert explanation.chosen is not None
    assert any(
        "compatible_sources as 'ModelCalibration'" in r for r in explanation.chosen.score.reasons
    )
    assert resolver.explain("BatchTransform_training", "model_input").required is False


def test_a_variant_making_a_dependency_required_can_fail_resolution() -> None:
    specs = variant_pipeline()
    del specs["ModelCalibration"]
    report = DependencyResolver(registry_of(specs)).get_resolution_report()
    assert [(u.consumer, u.dependency) for u in report.unresolved_required] == [
        ("BatchTransform_calibration", "model_input")
    ]


def test_the_effective_specification_of_a_step_in_its_context() -> None:
    specs = variant_pipeline()
    specs["evaluation_run"] = specs["BatchTransform_training"]  # no job type: the base
    resolver = DependencyResolver(registry_of(specs))
    effective = resolver.effective_specification("BatchTransform_calibration")
    assert effective.dependencies["model_input"].required is True
    assert effective.variants == {}
    base = resolver.effective_specification("evaluation_run")
    assert base.dependencies["model_input"].required is False
    assert base.variants == specs["evaluation_run"].variants
    with pytest.raises(StepNotFoundError):
        resolver.effective_specification("nope")


def test_the_effective_spec_follows_changes_to_the_spec() -> None:
    spec = load_spec_text(BATCH_TRANSFORM, "batch_transform.step.yaml")
    before = spec.for_job_type("calibration")
    assert spec.for_job_type("calibration") is before  # cached
    relaxed = {"spec": {"dependencies": {"model_input": {"required": False}}}}
    copy = spec.model_copy(update={"variants": {"calibration": relaxed}})
    assert copy.for_job_type("calibration").dependencies["model_input"].required is False
    assert spec.for_job_type("calibration").dependencies["model_input"].required is True
    spec.description = "changed"
    assert spec.for_job_type("calibration").description == "changed"
    # equality is by the fields, whatever was computed from them
    fresh = load_spec_text(BATCH_TRANSFORM, "again.yaml")
    fresh.description = "changed"
    assert fresh == spec and copy != spec


@pytest.mark.parametrize(
    "variant",
    [
        # native layout, as cursus writes it
        "  training:\n    spec:\n      dependencies:\n        processed_data:\n"
        "          semantic_keywords: [training]\n",
        # flat layout, ports as a list with logical_name and the long key names
        "  training:\n    dependencies:\n      - logical_name: processed_data\n"
        "        dependency_type: processing_output\n        semantic_keywords: [training]\n",
    ],
)
def test_a_variant_in_either_layout(variant: str) -> None:
    text = BATCH_TRANSFORM.split("variants:")[0] + "variants:\n" + variant
    spec = load_spec_text(text, "bt.yaml").for_job_type("training")
    processed = spec.dependencies["processed_data"]
    assert processed.semantic_keywords == ["training"]
    assert processed.compatible_sources == ["TabularPreprocessing"]  # kept from the base


def test_diff_contexts_shows_a_changed_variant() -> None:
    manager = RegistryManager(":memory:")
    dev, prod = manager.get_registry("dev"), manager.get_registry("prod")
    assert dev is not None and prod is not None
    base = make_spec("Prep", deps={"data": "processing_output"})
    for registry, words in ((dev, ["training"]), (prod, ["training", "data"])):
        variant = {"spec": {"dependencies": {"data": {"semantic_keywords": words}}}}
        spec = StepSpecification(**{**base.model_dump(), "variants": {"training": variant}})
        registry.register_specification("prep", spec)
    changes = diff_contexts(dev, prod).changed["prep"]
    assert [(c.path, c.left, c.right) for c in changes] == [
        (
            "variants.training.spec.dependencies.data.semantic_keywords",
            ["training"],
            ["training", "data"],
        )
    ]


def test_show_effective_merges_the_variant_and_show_keeps_the_stored_spec(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from regman.cli import app

    spec_file = tmp_path / "batch_transform.step.yaml"
    spec_file.write_text(BATCH_TRANSFORM)
    store = ["--store", str(tmp_path / "store")]
    runner = CliRunner()
    ok = runner.invoke(
        app, [*store, "register", "p", "batch_transform_calibration", str(spec_file)]
    )
    assert ok.exit_code == 0, ok.stderr
    stored = runner.invoke(app, [*store, "show", "p", "batch_transform_calibration", "--json"])
    effective = runner.invoke(
        app, [*store, "show", "p", "batch_transform_calibration", "--effective", "--json"]
    )
    assert stored.exit_code == effective.exit_code == 0, effective.stderr
    stored_deps = json.loads(stored.stdout)["spec"]["dependencies"]
    effective_deps = json.loads(effective.stdout)["spec"]["dependencies"]
    assert stored_deps["model_input"]["required"] is False
    assert effective_deps["model_input"]["required"] is True
    assert effective_deps["processed_data"]["semantic_keywords"] == ["calibration", "data"]
    assert "variants" in json.loads(stored.stdout)
