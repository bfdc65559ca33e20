"""Scoring rules: compatibility filters, name normalisation, and what evidence is worth."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regman import RegistryManager
from regman.scoring import (
    TYPE_ONLY_SCORE,
    WEIGHTS,
    data_types_compatible,
    name_form,
    normalize_name,
    requested_job_type,
    score_candidate,
    split_job_type,
    step_job_type,
    types_compatible,
)
from regman.spec import DependencySpec, DependencyType, OutputSpec, StepSpecification

T = DependencyType
THRESHOLD = 0.5


def dependency(
    name: str = "input", kind: str = "processing_output", **extra: Any
) -> DependencySpec:
    return DependencySpec(logical_name=name, dependency_type=kind, **extra)


def output(name: str = "result", kind: str = "processing_output", **extra: Any) -> OutputSpec:
    return OutputSpec(
        logical_name=name, output_type=kind, property_path=f"properties.{name}", **extra
    )


def provider(step_type: str = "Provider", *outputs: OutputSpec, **extra: Any) -> StepSpecification:
    return StepSpecification(
        step_type=step_type,
        node_type="source",
        outputs=list(outputs) or [output()],
        **extra,
    )


def score(dep: DependencySpec, out: OutputSpec, step: str = "provider", spec: Any = None) -> Any:
    return score_candidate(dep, out, provider_step=step, provider_spec=spec or provider("P", out))


# -- filters ---------------------------------------------------------------------------

ACCEPTS = {
    T.TRAINING_DATA: {T.PROCESSING_OUTPUT, T.TRAINING_DATA},
    T.PROCESSING_OUTPUT: {T.PROCESSING_OUTPUT, T.TRAINING_DATA},
    T.HYPERPARAMETERS: {T.HYPERPARAMETERS, T.CUSTOM_PROPERTY},
    T.PAYLOAD_SAMPLES: {T.PAYLOAD_SAMPLES, T.PROCESSING_OUTPUT},
    T.MODEL_ARTIFACTS: {T.MODEL_ARTIFACTS},
    T.CUSTOM_PROPERTY: {T.CUSTOM_PROPERTY},
}


@pytest.mark.parametrize(("wanted", "offered"), list(itertools.product(T, T)))
def test_type_compatibility_table(wanted: DependencyType, offered: DependencyType) -> None:
    expected = offered in ACCEPTS[wanted]
    assert types_compatible(wanted, offered) is expected
    result = score(dependency("x", wanted.value), output("x", offered.value))
    assert (result is not None) is expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("S3Uri", "S3Uri", True),
        ("S3Uri", "String", True),
        ("String", "s3uri", True),
        ("Integer", "Float", True),
        ("Float", "Integer", True),
        ("Integer", "String", False),
        ("S3Uri", "Float", False),
        ("Boolean", "Boolean", True),
        ("Boolean", "String", False),
    ],
)
def test_data_type_compatibility(a: str, b: str, expected: bool) -> None:
    assert data_types_compatible(a, b) is expected
    result = score(dependency("x", data_type=a), output("x", data_type=b))
    assert (result is not None) is expected


# -- names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("hyperparameters", "hyper_params"),
        ("HyperParameters", "hyper-parameters"),
        ("hparams", "Hyperparams"),
        ("eval_config", "evaluation_configuration"),
        ("EvalCfg", "evaluation-config"),
        ("ModelArtifacts", "model_artifacts"),
        ("model-artifact", "MODEL_ARTIFACTS"),
        ("train_data", "training_data"),
        ("params", "parameters"),
        ("metadata", "meta_data"),
        ("calib_output", "calibration_outputs"),
    ],
)
def test_names_that_normalise_alike(a: str, b: str) -> None:
    assert normalize_name(a) == normalize_name(b)
    result = score(dependency(a), output(b))
    assert result is not None and result.components["name"] == WEIGHTS["name"]


@pytest.mark.parametrize(
    ("a", "b"),
    [("input_data", "output_data"), ("model", "metrics"), ("training_data", "calibration_data")],
)
def test_names_that_share_only_filler_are_not_evidence(a: str, b: str) -> None:
    assert normalize_name(a) != normalize_name(b)
    result = score(dependency(a), output(b))
    assert result is not None and result.components["name"] == 0.0


def test_partial_name_scores_between_nothing_and_exact() -> None:
    partial = score(dependency("processed_data"), output("processed_features"))
    assert partial is not None
    assert 0 < partial.components["name"] < WEIGHTS["name"]


def test_each_name_is_normalised_once() -> None:
    assert name_form("SomeRareName_x1") is name_form("SomeRareName_x1")


# -- evidence --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(T))
def test_type_only_never_qualifies(kind: DependencyType) -> None:
    """The reference's 0.6 for type + data type alone wired optional inputs to anything."""
    for offered in ACCEPTS[kind]:
        result = score(dependency("alpha", kind.value), output("omega", offered.value))
        assert result is not None
        assert result.total <= TYPE_ONLY_SCORE < THRESHOLD
        assert "no name, alias, keyword or compatible_sources evidence" in result.reasons


def test_exact_name_alone_qualifies() -> None:
    result = score(dependency("processed_data"), output("processed_data"))
    assert result is not None and result.total == pytest.approx(0.55)
    assert result.total >= THRESHOLD


def test_alias_match_ranks_just_below_a_name_match() -> None:
    by_name = score(dependency("model"), output("model", "processing_output"))
    by_alias = score(dependency("model"), output("artifacts", aliases=["model"]))
    assert by_name is not None and by_alias is not None
    assert THRESHOLD <= by_alias.total < by_name.total
    assert any("alias 'model'" in reason for reason in by_alias.reasons)


def test_declared_source_qualifies_and_outranks_any_undeclared_provider() -> None:
    dep = dependency("model_input", "training_data", compatible_sources=["TabularPreprocessing"])
    declared = score(
        dep, output("zzz", "processing_output"), "prep", provider("TabularPreprocessing")
    )
    # everything but a declared source: exact type, same name, keywords both ways
    best_undeclared = score(
        dependency("model_input", "training_data", semantic_keywords=["model"]),
        output("model_input", "training_data", semantic_keywords=["model"]),
    )
    assert declared is not None and best_undeclared is not None
    assert declared.components["compatible_source"] == WEIGHTS["compatible_source"]
    assert declared.components["name"] == 0.0
    assert best_undeclared.total == pytest.approx(0.766, abs=1e-3)
    assert declared.total > best_undeclared.total


@pytest.mark.parametrize(
    ("step", "step_type", "sources", "matched"),
    [
        ("prep", "TabularPreprocessing", ["TabularPreprocessing"], True),
        ("TabularPreprocessing_training", "Custom", ["TabularPreprocessing"], True),
        ("tabular_preprocessing", "Custom", ["TabularPreprocessing"], True),
        ("prep", "TabularPreprocessingStep", ["TabularPreprocessing"], True),
        ("prep", "TabularPreprocessing", ["XGBoostTraining"], False),
        ("TabularPreprocessing_extra", "Custom", ["TabularPreprocessing"], False),
    ],
)
def test_compatible_sources_match_step_type_or_step_name_without_job_suffix(
    step: str, step_type: str, sources: list[str], matched: bool
) -> None:
    dep = dependency("x", compatible_sources=sources)
    result = score(dep, output("y"), step, provider(step_type))
    assert result is not None
    assert (result.components["compatible_source"] > 0) is matched


def test_keywords_on_both_sides_add_evidence_and_generic_keywords_do_not() -> None:
    plain = score(dependency("input"), output("features_table"))
    with_dep_kw = score(
        dependency("input", semantic_keywords=["features"]), output("features_table")
    )
    with_both = score(
        dependency("input", semantic_keywords=["features"]),
        output("features_table", semantic_keywords=["input"]),
    )
    generic = score(dependency("input", semantic_keywords=["data"]), output("data"))
    assert plain is not None and with_dep_kw is not None and with_both is not None
    assert plain.total < with_dep_kw.total
    assert with_both.components["output_keywords"] == 0.0  # "input" is filler
    assert generic is not None and generic.components["dependency_keywords"] == 0.0
    assert with_dep_kw.components["dependency_keywords"] == WEIGHTS["dependency_keywords"]


WORDS = ["model", "data", "training", "features", "metrics", "config", "params", "eval"]
names = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map("_".join)


@settings(max_examples=100, deadline=None)
@given(
    dep_name=names,
    out_name=names,
    dep_kw=st.lists(names, max_size=3),
    out_kw=st.lists(names, max_size=3),
    aliases=st.lists(names, max_size=2, unique=True),
    kinds=st.sampled_from([(wanted, offered) for wanted in T for offered in ACCEPTS[wanted]]),
    sourced=st.booleans(),
)
def test_score_is_bounded_and_combines_its_components(
    dep_name: str,
    out_name: str,
    dep_kw: list[str],
    out_kw: list[str],
    aliases: list[str],
    kinds: tuple[DependencyType, DependencyType],
    sourced: bool,
) -> None:
    aliases = [a for a in aliases if a != out_name]
    dep = dependency(
        dep_name,
        kinds[0].value,
        semantic_keywords=dep_kw,
        compatible_sources=["Provider"] if sourced else [],
    )
    out = output(out_name, kinds[1].value, aliases=aliases, semantic_keywords=out_kw)
    result = score(dep, out, "p", provider("Provider", out))
    assert result is not None
    assert 0.0 <= result.total <= 1.0
    for name, value in result.components.items():
        assert 0.0 <= value <= WEIGHTS[name] + 1e-12
    expected = 1 - math.prod(1 - value for value in result.components.values())
    assert result.total == pytest.approx(expected, abs=1e-4)
    unsourced = score(dependency(dep_name, kinds[0].value, semantic_keywords=dep_kw), out)
    assert unsourced is not None and unsourced.total <= result.total


# -- job types -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("TabularPreprocessing_training", ("TabularPreprocessing", "training")),
        ("TabularPreprocessing_calibration", ("TabularPreprocessing", "calibration")),
        ("Model-Eval_validation", ("Model-Eval", "validation")),
        ("load_train", ("load", "training")),
        ("load_test", ("load", "testing")),
        ("xgboost_training_inference", ("xgboost_training", "inference")),
        ("training", ("training", None)),
        ("data_loading", ("data_loading", None)),
    ],
)
def test_split_job_type(step: str, expected: tuple[str, str | None]) -> None:
    assert split_job_type(step) == expected


def test_job_type_field_wins_over_the_name() -> None:
    spec = provider("Prep", job_type="Calibration")
    assert step_job_type("Prep_training", spec) == "calibration"
    assert step_job_type("Prep_training", provider("Prep")) == "training"
    assert step_job_type("Prep", provider("Prep")) is None


@pytest.mark.parametrize(
    ("name", "keywords", "expected"),
    [
        ("training_data", [], "training"),
        ("calibration_input", [], "calibration"),
        ("input_path", ["data"], None),
        # keywords are score evidence, never a job-type request (issue 13, item 3)
        ("input_path", ["train", "data"], None),
        ("training_calibration_input", [], None),  # ambiguous: no preference
    ],
)
def test_requested_job_type(name: str, keywords: list[str], expected: str | None) -> None:
    assert requested_job_type(dependency(name, semantic_keywords=keywords)) == expected


def test_registry_find_compatible_outputs_uses_these_scores() -> None:
    registry = RegistryManager(":memory:").get_registry("ctx")
    assert registry is not None
    registry.register_specification("prep", provider("Prep", output("processed_data")))
    registry.register_specification(
        "other", provider("Other", output("metadata"), output("model", "model_artifacts"))
    )
    dep = dependency("processed_data")
    found = registry.find_compatible_outputs(dep)
    assert [(step, name) for step, name, _, _ in found] == [
        ("prep", "processed_data"),
        ("other", "metadata"),
    ]
    assert found[0][3] == pytest.approx(0.55)
    assert found[1][3] == pytest.approx(TYPE_ONLY_SCORE)
