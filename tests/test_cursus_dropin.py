"""Issue 14: what code written against cursus calls, and the two wiring bugs it showed."""

from __future__ import annotations

import pytest

from regman import (
    DependencyResolutionError,
    DependencyResolver,
    OutputSpec,
    PropertyReference,
)
from regman.scoring import score_candidate
from tests.test_resolver import dep, out, registry_of, step, wiring

PREPROCESSING_PATH = "properties.ProcessingOutputConfig.Outputs['processed_data'].S3Output.S3Uri"


@pytest.mark.parametrize(
    "step_type",
    [
        "TabularPreprocessing_Training",
        "TabularPreprocessing-Training",
        "TabularPreprocessing_training",
        "TabularPreprocessing_Calibration",
        "TabularPreprocessing",
    ],
)
def test_a_job_type_suffix_on_the_provider_step_type_matches_compatible_sources(
    step_type: str,
) -> None:
    specs = {
        "prep": step(step_type, outs=[out("processed_data", "processing_output")]),
        "train": step(
            "XGBoostTraining",
            deps=[dep("input_path", "training_data", sources=["TabularPreprocessing"])],
        ),
    }
    resolver = DependencyResolver(registry_of(specs))
    refs = resolver.resolve_dependencies()  # raised before: the dependency stayed unresolved
    assert str(refs["train"]["input_path"]) == "prep.processed_data"
    (edge,) = resolver.get_resolution_report().edges
    assert edge.score.components["compatible_source"] > 0
    assert any("compatible_sources as 'TabularPreprocessing'" in r for r in edge.score.reasons)
    # explain and the public score agree with the wiring
    explanation = resolver.explain("train", "input_path")
    assert explanation.chosen is not None
    assert explanation.chosen.score.total == edge.score.total
    public = score_candidate(
        specs["train"].dependencies["input_path"],
        specs["prep"].outputs["processed_data"],
        provider_step="prep",
        provider_spec=specs["prep"],
    )
    assert public is not None and public.total == edge.score.total


def test_a_suffix_that_is_not_a_job_type_is_part_of_the_step_type() -> None:
    specs = {
        "prep": step("Tabular_Preprocessing", outs=[out("features", "processing_output")]),
        "train": step("Trainer", deps=[dep("input_path", "training_data", sources=["Tabular"])]),
    }
    report = DependencyResolver(registry_of(specs)).get_resolution_report()
    assert report.edges == ()  # 'Preprocessing' is no job type: Tabular is another step type


def test_property_reference_for_a_sagemaker_pipeline_definition() -> None:
    reference = PropertyReference("prep", "processed_data", PREPROCESSING_PATH)
    assert reference.to_sagemaker_property() == {
        "Get": "Steps.prep.ProcessingOutputConfig.Outputs['processed_data'].S3Output.S3Uri"
    }
    model = PropertyReference("train", "model", "properties.ModelArtifacts.S3ModelArtifacts")
    assert model.to_sagemaker_property() == {"Get": "Steps.train.ModelArtifacts.S3ModelArtifacts"}


def test_resolve_all_dependencies_is_resolve_dependencies() -> None:
    specs = {
        "prep": step("Prep", outs=[out("processed_data", "processing_output")]),
        "train": step("Trainer", deps=[dep("processed_data", "processing_output")]),
    }
    resolver = DependencyResolver(registry_of(specs))
    assert resolver.resolve_all_dependencies(["prep", "train"]) == (
        resolver.resolve_dependencies(["prep", "train"])
    )
    assert resolver.resolve_all_dependencies()["train"]["processed_data"].step_name == "prep"


def test_property_reference_as_cursus_builds_it() -> None:
    output = OutputSpec(
        logical_name="processed_data",
        output_type="processing_output",
        property_path=PREPROCESSING_PATH,
    )
    reference = PropertyReference(step_name="prep", output_spec=output)
    assert reference.step_name == "prep"
    assert reference.output_spec is output
    assert reference.output_name == "processed_data"
    assert reference.property_path == PREPROCESSING_PATH
    assert str(reference) == "prep.processed_data"
    assert reference == PropertyReference("prep", "processed_data", PREPROCESSING_PATH)
    with pytest.raises(TypeError, match="output_spec"):
        PropertyReference(step_name="prep")


def test_resolved_references_carry_their_output_spec() -> None:
    specs = {
        "prep": step("Prep", outs=[out("processed_data", "processing_output")]),
        "train": step("Trainer", deps=[dep("processed_data", "processing_output")]),
    }
    reference = DependencyResolver(registry_of(specs)).resolve_all_dependencies()["train"][
        "processed_data"
    ]
    assert reference.output_spec == specs["prep"].outputs["processed_data"]
    assert str(reference) == "prep.processed_data"


def test_the_error_for_unresolved_required_dependencies_lists_them() -> None:
    specs = {
        "prep": step("Prep", outs=[out("processed_data", "processing_output")]),
        "train": step(
            "Trainer",
            deps=[
                dep("processed_data", "processing_output"),
                dep("model_seed", "model_artifacts"),
                dep("hints", "custom_property", required=False),
            ],
        ),
        "score": step("Scorer", deps=[dep("weights", "custom_property")]),
    }
    with pytest.raises(DependencyResolutionError) as caught:
        DependencyResolver(registry_of(specs)).resolve_all_dependencies()
    message = str(caught.value)
    assert "unresolved required dependencies" in message
    assert "score.weights, train.model_seed" in message
    assert "train.hints" not in message and "train.processed_data" not in message
    assert wiring(caught.value.report) == {("train", "processed_data"): ("prep", "processed_data")}
