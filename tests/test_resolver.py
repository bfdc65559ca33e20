"""DependencyResolver: hand-built pipelines with known wiring, and properties of any wiring."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regman import (
    DependencyResolutionError,
    DependencyResolver,
    NotFoundError,
    PropertyReference,
    RegistryManager,
    StepNotFoundError,
)
from regman.candidates import BoundTable, OutputIndex, Preference
from regman.resolution import ResolutionReport
from regman.resolver import NEAR_EQUAL
from regman.scoring import (
    JOB_TYPES,
    form_of_dependency,
    name_form,
    normalize_name,
    requested_job_type,
    score_candidate,
    step_job_type,
)
from regman.spec import DependencySpec, OutputSpec, StepSpecification

# -- building specs ----------------------------------------------------------------------


def dep(
    name: str,
    kind: str,
    *,
    sources: Sequence[str] = (),
    keywords: Sequence[str] = (),
    required: bool = True,
) -> DependencySpec:
    return DependencySpec(
        logical_name=name,
        dependency_type=kind,
        compatible_sources=list(sources),
        semantic_keywords=list(keywords),
        required=required,
    )


def out(
    name: str, kind: str, *, aliases: Sequence[str] = (), keywords: Sequence[str] = ()
) -> OutputSpec:
    return OutputSpec(
        logical_name=name,
        output_type=kind,
        property_path=f"properties.ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri",
        aliases=list(aliases),
        semantic_keywords=list(keywords),
    )


def step(
    step_type: str,
    deps: Sequence[DependencySpec] = (),
    outs: Sequence[OutputSpec] = (),
    job_type: str | None = None,
) -> StepSpecification:
    node = {(False, True): "source", (True, True): "internal", (True, False): "sink"}[
        (bool(deps), bool(outs))
    ]
    return StepSpecification(
        step_type=step_type,
        node_type=node,
        dependencies=list(deps),
        outputs=list(outs),
        job_type=job_type,
    )


def registry_of(specs: Mapping[str, StepSpecification], order: Iterable[str] | None = None) -> Any:
    registry = RegistryManager(":memory:").get_registry("pipeline")
    assert registry is not None
    for name in order if order is not None else specs:
        registry.register_specification(name, specs[name])
    return registry


def wiring(report: ResolutionReport) -> dict[tuple[str, str], tuple[str, str]]:
    return {(e.consumer, e.dependency): (e.provider, e.output) for e in report.edges}


def loading(job: str) -> dict[str, StepSpecification]:
    return {
        f"CradleDataLoading_{job}": step(
            "CradleDataLoading",
            outs=[
                out("DATA", "processing_output", keywords=["data", "raw", "dataset"]),
                out("METADATA", "processing_output", keywords=["metadata", "schema"]),
                out("SIGNATURE", "processing_output", keywords=["signature", "schema"]),
            ],
        ),
        f"TabularPreprocessing_{job}": step(
            "TabularPreprocessing",
            deps=[
                dep(
                    "DATA",
                    "processing_output",
                    sources=["CradleDataLoading"],
                    keywords=["data", "input", "raw", "dataset"],
                ),
                dep(
                    "METADATA",
                    "processing_output",
                    sources=["CradleDataLoading"],
                    keywords=["metadata"],
                    required=False,
                ),
                dep(
                    "SIGNATURE",
                    "processing_output",
                    sources=["CradleDataLoading"],
                    keywords=["signature"],
                    required=False,
                ),
            ],
            outs=[
                out(
                    "processed_data",
                    "processing_output",
                    aliases=["ProcessedTabularData"],
                    keywords=["processed", "tabular"],
                )
            ],
        ),
    }


XGBOOST_TRAINING = step(
    "XGBoostTraining",
    deps=[
        dep(
            "input_path",
            "training_data",
            sources=["TabularPreprocessing", "ProcessingStep"],
            keywords=["data", "input", "training", "dataset", "processed", "train", "tabular"],
        ),
        dep(
            "hyperparameters_s3_uri",
            "hyperparameters",
            sources=["HyperparameterPrep"],
            keywords=["config", "params", "hyperparameters"],
            required=False,
        ),
    ],
    outs=[
        out(
            "model_output",
            "model_artifacts",
            aliases=["ModelArtifacts", "model_data"],
            keywords=["model", "artifacts", "trained"],
        ),
        out("evaluation_output", "processing_output", keywords=["evaluation", "metrics"]),
    ],
)

TRAINING_PIPELINE = {
    **loading("training"),
    "XGBoostTraining": XGBOOST_TRAINING,
    "MIMSPackaging": step(
        "MIMSPackaging",
        deps=[
            dep(
                "model_input",
                "model_artifacts",
                sources=["XGBoostTraining"],
                keywords=["model", "artifacts", "trained"],
            ),
            dep(
                "inference_scripts_input",
                "processing_output",
                sources=["ProcessingStep"],
                keywords=["inference", "scripts", "code"],
                required=False,
            ),
        ],
        outs=[out("packaged_model", "model_artifacts", keywords=["packaged", "model"])],
    ),
    "MIMSPayload": step(
        "MIMSPayload",
        deps=[
            dep(
                "model_input",
                "model_artifacts",
                sources=["XGBoostTraining"],
                keywords=["model", "trained"],
            )
        ],
        outs=[
            out(
                "payload_sample",
                "payload_samples",
                aliases=["GeneratedPayloadSamples"],
                keywords=["payload", "samples"],
            )
        ],
    ),
    "ModelRegistration": step(
        "ModelRegistration",
        deps=[
            dep(
                "PackagedModel",
                "model_artifacts",
                sources=["MIMSPackaging"],
                keywords=["packaged", "model"],
            ),
            dep(
                "GeneratedPayloadSamples",
                "payload_samples",
                sources=["MIMSPayload"],
                keywords=["payload", "samples"],
            ),
        ],
    ),
}


# -- hand-built pipelines ----------------------------------------------------------------


def test_full_training_pipeline() -> None:
    resolver = DependencyResolver(registry_of(TRAINING_PIPELINE))
    report = resolver.get_resolution_report()
    loader, prep = "CradleDataLoading_training", "TabularPreprocessing_training"
    assert wiring(report) == {
        (prep, "DATA"): (loader, "DATA"),
        (prep, "METADATA"): (loader, "METADATA"),
        (prep, "SIGNATURE"): (loader, "SIGNATURE"),
        ("XGBoostTraining", "input_path"): (prep, "processed_data"),
        ("MIMSPackaging", "model_input"): ("XGBoostTraining", "model_output"),
        ("MIMSPayload", "model_input"): ("XGBoostTraining", "model_output"),
        ("ModelRegistration", "PackagedModel"): ("MIMSPackaging", "packaged_model"),
        ("ModelRegistration", "GeneratedPayloadSamples"): ("MIMSPayload", "payload_sample"),
    }
    # optional inputs with no real candidate stay unwired (the reference filled them)
    assert [(u.consumer, u.dependency) for u in report.unresolved_optional] == [
        ("MIMSPackaging", "inference_scripts_input"),
        ("XGBoostTraining", "hyperparameters_s3_uri"),
    ]
    assert report.ok and not report.unresolved_required
    assert report.resolution_rate == pytest.approx(8 / 10)
    assert report.order == (
        loader,
        prep,
        "XGBoostTraining",
        "MIMSPackaging",
        "MIMSPayload",
        "ModelRegistration",
    )
    assert resolver.execution_order() == list(report.order)
    refs = resolver.resolve_dependencies(TRAINING_PIPELINE)
    assert refs[loader] == {}
    reference = refs["XGBoostTraining"]["input_path"]
    assert reference.step_name == prep and reference.output_name == "processed_data"
    assert reference.property_path.endswith("['processed_data'].S3Output.S3Uri")
    assert reference.score >= 0.5
    for edge in report.edges:
        assert edge.score.components["compatible_source"] > 0
        assert any("compatible_sources" in reason for reason in edge.score.reasons)


def test_training_and_calibration_copies_side_by_side() -> None:
    specs = {
        **loading("training"),
        **loading("calibration"),
        "XGBoostTraining": XGBOOST_TRAINING,
        "XGBoostModelEval_calibration": step(
            "XGBoostModelEval",
            deps=[
                dep("model_input", "model_artifacts", sources=["XGBoostTraining"]),
                dep(
                    "processed_data",
                    "processing_output",
                    sources=["TabularPreprocessing"],
                    keywords=["data", "evaluation", "processed"],
                ),
            ],
            outs=[out("eval_output", "processing_output", keywords=["evaluation"])],
        ),
    }
    resolver = DependencyResolver(registry_of(specs))
    report = resolver.get_resolution_report()
    edges = wiring(report)
    for job in ("training", "calibration"):
        assert edges[(f"TabularPreprocessing_{job}", "DATA")] == (
            f"CradleDataLoading_{job}",
            "DATA",
        )
        assert edges[(f"TabularPreprocessing_{job}", "METADATA")] == (
            f"CradleDataLoading_{job}",
            "METADATA",
        )
    # no job type of its own, but it asks for training data
    assert edges[("XGBoostTraining", "input_path")] == (
        "TabularPreprocessing_training",
        "processed_data",
    )
    # a calibration step takes calibration data, and the only model there is
    assert edges[("XGBoostModelEval_calibration", "processed_data")] == (
        "TabularPreprocessing_calibration",
        "processed_data",
    )
    assert edges[("XGBoostModelEval_calibration", "model_input")] == (
        "XGBoostTraining",
        "model_output",
    )
    explanation = resolver.explain("XGBoostModelEval_calibration", "processed_data")
    assert explanation.step_job_type == "calibration"
    statuses = {(c.provider, c.output): c.status for c in explanation.candidates}
    assert statuses[("TabularPreprocessing_calibration", "processed_data")] == "chosen"
    assert statuses[("TabularPreprocessing_training", "processed_data")] == "job type"


def test_own_job_type_beats_a_better_scoring_provider_of_another_job_type() -> None:
    specs = {
        # job type from the field, and a name that matches the dependency exactly
        "prep_a": step(
            "Prep",
            outs=[out("features", "processing_output", keywords=["features"])],
            job_type="training",
        ),
        "prep_b": step("Prep", outs=[out("prepared", "processing_output")], job_type="testing"),
        "Model_testing": step(
            "Model",
            deps=[dep("features", "processing_output", sources=["Prep"])],
            outs=[out("model", "model_artifacts")],
        ),
    }
    resolver = DependencyResolver(registry_of(specs))
    assert wiring(resolver.get_resolution_report())[("Model_testing", "features")] == (
        "prep_b",
        "prepared",
    )
    ranked = resolver.explain("Model_testing", "features").candidates
    assert [(c.provider, c.status) for c in ranked] == [
        ("prep_b", "chosen"),
        ("prep_a", "job type"),
    ]
    assert ranked[1].score.total > ranked[0].score.total


def cycle_specs(with_alternative: bool) -> dict[str, StepSpecification]:
    specs = {
        "A": step(
            "Alpha",
            deps=[dep("features", "processing_output", sources=["Beta"], keywords=["features"])],
            outs=[out("model", "model_artifacts")],
        ),
        "B": step(
            "Beta",
            deps=[dep("model", "model_artifacts", sources=["Alpha"])],
            outs=[out("features", "processing_output")],
        ),
    }
    if with_alternative:
        specs["D"] = step("Delta", outs=[out("model", "model_artifacts")])
    return specs


def test_an_output_that_would_close_a_cycle_is_passed_over() -> None:
    resolver = DependencyResolver(registry_of(cycle_specs(with_alternative=True)))
    report = resolver.get_resolution_report()
    # A.features <- B.features is the stronger edge and goes first; B.model's best
    # candidate, A.model, would then close B -> A -> B, so it takes D.model
    assert wiring(report) == {("A", "features"): ("B", "features"), ("B", "model"): ("D", "model")}
    (edge,) = [e for e in report.edges if e.consumer == "B"]
    assert any("A.model" in note and "close the cycle B -> A -> B" in note for note in edge.notes)
    assert report.order == ("D", "B", "A")
    explanation = resolver.explain("B", "model")
    assert [(c.provider, c.status) for c in explanation.candidates] == [
        ("A", "closes a cycle"),
        ("D", "chosen"),
    ]


def test_when_every_candidate_closes_a_cycle_the_dependency_is_unresolved() -> None:
    resolver = DependencyResolver(registry_of(cycle_specs(with_alternative=False)))
    with pytest.raises(DependencyResolutionError) as caught:
        resolver.resolve_dependencies(["A", "B"])
    report = caught.value.report
    assert isinstance(report, ResolutionReport)
    assert wiring(report) == {("A", "features"): ("B", "features")}
    (missing,) = report.unresolved_required
    assert (missing.consumer, missing.dependency) == ("B", "model")
    assert "close a cycle" in missing.reason
    assert "B.model" in str(caught.value)
    assert resolver.execution_order() == ["B", "A"]


def test_optional_dependency_without_a_real_candidate_stays_unresolved() -> None:
    specs = {
        "loader": step(
            "Loader",
            outs=[out("metadata", "processing_output"), out("signature", "processing_output")],
        ),
        "trainer": step(
            "Trainer",
            deps=[
                dep("metadata", "processing_output"),
                dep("validation_input", "training_data", required=False),
            ],
            outs=[out("model", "model_artifacts")],
        ),
    }
    resolver = DependencyResolver(registry_of(specs))
    refs = resolver.resolve_dependencies()  # optional gaps do not raise
    assert set(refs["trainer"]) == {"metadata"}
    (gap,) = resolver.get_resolution_report().unresolved_optional
    assert (gap.consumer, gap.dependency, gap.required) == ("trainer", "validation_input", False)
    assert "2 output(s) of a compatible type, none with name" in gap.reason
    explanation = resolver.explain("trainer", "validation_input")
    assert explanation.chosen is None
    assert {c.status for c in explanation.candidates} == {"below threshold"}
    assert explanation.unresolved_reason == gap.reason


def test_a_tie_goes_to_the_first_provider_by_name_whatever_the_registration_order() -> None:
    specs = {
        "loader_b": step("Loader", outs=[out("data", "processing_output")]),
        "loader_a": step("Loader", outs=[out("data", "processing_output")]),
        "consumer": step("Consumer", deps=[dep("data", "processing_output")]),
    }
    for order in (["loader_b", "loader_a", "consumer"], ["consumer", "loader_a", "loader_b"]):
        report = DependencyResolver(registry_of(specs, order)).get_resolution_report()
        (edge,) = report.edges
        assert (edge.provider, edge.output) == ("loader_a", "data")
        assert edge.notes == (
            "tied at 0.55 with loader_b.data; ties go to the first provider and output by name",
        )
    explanation = DependencyResolver(registry_of(specs)).explain("consumer", "data")
    assert [(c.provider, c.status) for c in explanation.candidates] == [
        ("loader_a", "chosen"),
        ("loader_b", "tie"),
    ]


def test_a_tie_prefers_a_provider_already_upstream() -> None:
    specs = {
        "loader_a": step("Loader", outs=[out("data", "processing_output")]),
        "loader_b": step(
            "Loader",
            outs=[out("data", "processing_output"), out("config", "hyperparameters")],
        ),
        "consumer": step(
            "Consumer",
            deps=[
                dep("data", "processing_output"),
                dep("config", "hyperparameters", keywords=["config"]),
            ],
        ),
    }
    report = DependencyResolver(registry_of(specs)).get_resolution_report()
    # config (0.69) is wired first, so loader_b is upstream when the data tie is broken
    assert wiring(report) == {
        ("consumer", "config"): ("loader_b", "config"),
        ("consumer", "data"): ("loader_b", "data"),
    }
    (edge,) = [e for e in report.edges if e.dependency == "data"]
    assert "already upstream of consumer" in edge.notes[0]
    assert edge.tied_with is None  # a rule decided, not the name order


def test_every_unresolved_required_dependency_is_named() -> None:
    specs = {
        "loader": step("Loader", outs=[out("data", "processing_output")]),
        "trainer": step(
            "Trainer",
            deps=[dep("data", "processing_output"), dep("model_seed", "model_artifacts")],
            outs=[out("model", "model_artifacts")],
        ),
        "scorer": step("Scorer", deps=[dep("weights", "custom_property")]),
    }
    resolver = DependencyResolver(registry_of(specs))
    with pytest.raises(DependencyResolutionError) as caught:
        resolver.resolve_dependencies()
    message = str(caught.value)
    assert message.startswith(
        "unresolved required dependencies in context 'pipeline': scorer.weights, "
        "trainer.model_seed ("
    )
    assert "trainer.data" not in message
    report = caught.value.report
    assert [(u.consumer, u.dependency) for u in report.unresolved_required] == [
        ("scorer", "weights"),
        ("trainer", "model_seed"),
    ]
    assert "no other step has an output of type custom_property" in (
        report.unresolved_required[0].reason
    )
    assert "the best candidate, trainer.model, scores" not in message  # own outputs never count
    assert caught.value.exit_code == 1


def test_near_miss_is_reported_with_its_score() -> None:
    specs = {
        "loader": step("Loader", outs=[out("processed_features", "processing_output")]),
        "trainer": step("Trainer", deps=[dep("processed_data", "processing_output")]),
    }
    report = DependencyResolver(registry_of(specs)).get_resolution_report()
    (missing,) = report.unresolved_required
    assert missing.reason.startswith("the best candidate, loader.processed_features, scores 0.")
    assert "below the threshold 0.5" in missing.reason


def test_unknown_names() -> None:
    resolver = DependencyResolver(registry_of(TRAINING_PIPELINE))
    with pytest.raises(StepNotFoundError) as caught:
        resolver.resolve_dependencies(["XGBoostTraining", "nope"])
    assert isinstance(caught.value, LookupError) and caught.value.step == "nope"
    with pytest.raises(StepNotFoundError):
        resolver.explain("nope", "x")
    with pytest.raises(NotFoundError, match="has no dependency 'nope'"):
        resolver.explain("XGBoostTraining", "nope")


def test_only_the_given_steps_are_wired() -> None:
    resolver = DependencyResolver(registry_of(TRAINING_PIPELINE))
    report = resolver.get_resolution_report(["XGBoostTraining", "MIMSPackaging"])
    assert report.steps == ("MIMSPackaging", "XGBoostTraining")
    assert wiring(report) == {("MIMSPackaging", "model_input"): ("XGBoostTraining", "model_output")}
    assert [u.dependency for u in report.unresolved_required] == ["input_path"]
    with pytest.raises(DependencyResolutionError, match=r"XGBoostTraining\.input_path"):
        resolver.resolve_step_dependencies("XGBoostTraining", ["MIMSPackaging"])
    step_refs = resolver.resolve_step_dependencies(
        "XGBoostTraining", ["TabularPreprocessing_training"]
    )
    assert set(step_refs) == {"input_path"}
    assert resolver.resolve_step_dependencies("MIMSPayload")["model_input"].output_name == (
        "model_output"
    )


def test_threshold_is_configurable() -> None:
    registry = registry_of(TRAINING_PIPELINE)
    default = DependencyResolver(registry).get_resolution_report()
    strict = DependencyResolver(registry, threshold=0.95).get_resolution_report()
    anything = DependencyResolver(registry, threshold=0.0).get_resolution_report()
    assert len(strict.edges) < len(default.edges) < len(anything.edges)
    assert all(e.score.total >= 0.95 for e in strict.edges)
    # at 0 even a type-only match qualifies, so the optional gap gets filled
    assert ("MIMSPackaging", "inference_scripts_input") in wiring(anything)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="threshold"):
            DependencyResolver(registry, threshold=bad)


def test_property_reference() -> None:
    reference = PropertyReference("prep", "processed_data", "properties.Outputs['x']", 0.8134)
    assert repr(reference) == (
        "PropertyReference(prep.processed_data -> properties.Outputs['x'], score=0.81)"
    )
    assert reference.to_dict() == {
        "step_name": "prep",
        "output_name": "processed_data",
        "property_path": "properties.Outputs['x']",
        "score": 0.8134,
    }
    # the SageMaker SDK's form: the Python attribute path's 'properties.' is not in it
    assert reference.to_sagemaker_property() == {"Get": "Steps.prep.Outputs['x']"}


def test_report_as_a_document() -> None:
    document = DependencyResolver(registry_of(TRAINING_PIPELINE)).get_resolution_report().to_dict()
    assert document["context"] == "pipeline" and document["threshold"] == 0.5
    assert document["total_dependencies"] == 10 and document["resolution_rate"] == 0.8
    first = document["resolved"][0]
    assert set(first) >= {"consumer", "dependency", "provider", "output", "score", "breakdown"}
    assert set(first["breakdown"]["components"]) == {
        "type",
        "name",
        "dependency_keywords",
        "output_keywords",
        "compatible_source",
    }
    assert document["unresolved_required"] == []
    assert len(document["unresolved_optional"]) == 2


def test_registry_changes_are_seen() -> None:
    registry = registry_of(cycle_specs(with_alternative=True))
    resolver = DependencyResolver(registry)
    assert wiring(resolver.get_resolution_report())[("B", "model")] == ("D", "model")
    registry.register_specification("C", step("Beta", outs=[out("model", "model_artifacts")]))
    assert wiring(resolver.get_resolution_report())[("B", "model")] == ("C", "model")


# -- properties of any wiring ------------------------------------------------------------

STEP_TYPES = ["Load", "Prep", "Train", "Eval"]
NAMES = [
    "data",
    "input_data",
    "model",
    "model_input",
    "features",
    "processed_data",
    "training_data",
    "metrics",
    "hyperparameters",
    "config",
]
KEYWORDS = ["model", "training", "processed", "metrics", "features", "calibration", "data"]
KINDS = [
    "processing_output",
    "training_data",
    "model_artifacts",
    "hyperparameters",
    "custom_property",
    "payload_samples",
]


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, StepSpecification]:
    specs: dict[str, StepSpecification] = {}
    for index in range(draw(st.integers(2, 7))):
        job = draw(st.sampled_from([None, None, "training", "calibration"]))
        name = f"S{index}" + (f"_{job}" if job else "")
        deps = [
            dep(
                n,
                draw(st.sampled_from(KINDS)),
                sources=draw(st.lists(st.sampled_from(STEP_TYPES), max_size=2, unique=True)),
                keywords=draw(st.lists(st.sampled_from(KEYWORDS), max_size=2, unique=True)),
                required=draw(st.booleans()),
            )
            for n in draw(st.lists(st.sampled_from(NAMES), max_size=3, unique=True))
        ]
        outs = [
            out(
                n,
                draw(st.sampled_from(KINDS)),
                aliases=[a for a in draw(st.lists(st.sampled_from(NAMES), max_size=1)) if a != n],
                keywords=draw(st.lists(st.sampled_from(KEYWORDS), max_size=2, unique=True)),
            )
            for n in draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True))
        ]
        if not deps and not outs:
            outs = [out("data", "processing_output")]
        specs[name] = step(draw(st.sampled_from(STEP_TYPES)), deps, outs)
    return specs


def reaches(edges: Iterable[tuple[str, str]], start: str, goal: str) -> bool:
    """Whether goal is reachable from start along provider -> consumer edges."""
    consumers: dict[str, set[str]] = {}
    for provider, consumer in edges:
        consumers.setdefault(provider, set()).add(consumer)
    seen, stack = {start}, [start]
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        for nxt in consumers.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return False


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=contexts(), data=st.data())
def test_any_wiring_is_acyclic_deterministic_and_locally_best(
    specs: dict[str, StepSpecification], data: st.DataObject
) -> None:
    registry = registry_of(specs)
    resolver = DependencyResolver(registry)
    report = resolver.get_resolution_report()

    # acyclic: the order puts every provider before its consumers
    position = {name: i for i, name in enumerate(report.order)}
    assert sorted(position) == sorted(specs)
    edges = [(e.provider, e.consumer) for e in report.edges]
    assert all(position[p] < position[c] for p, c in edges)

    # the same wiring whatever the registration order
    shuffled = data.draw(st.permutations(list(specs)))
    again = DependencyResolver(registry_of(specs, shuffled)).get_resolution_report()
    assert again.to_dict() == report.to_dict()

    # each dependency is wired exactly once or reported; scores are the public scores
    seen = [(e.consumer, e.dependency) for e in report.edges] + [
        (u.consumer, u.dependency) for u in report.unresolved
    ]
    assert sorted(seen) == sorted((s, d) for s, spec in specs.items() for d in spec.dependencies)
    for edge in report.edges:
        assert edge.provider != edge.consumer
        spec = specs[edge.consumer]
        public = score_candidate(
            spec.dependencies[edge.dependency],
            specs[edge.provider].outputs[edge.output],
            provider_step=edge.provider,
            provider_spec=specs[edge.provider],
        )
        assert public is not None and public.total == edge.score.total >= resolver.threshold

    # nothing better was passed over unless it closes a cycle (or loses a tie by name)
    chosen = {(e.consumer, e.dependency): e for e in report.edges}
    for consumer, spec in specs.items():
        for name in spec.dependencies:
            explanation = resolver.explain(consumer, name)
            wired = chosen.get((consumer, name))
            for candidate in explanation.candidates:
                if candidate.status in ("chosen", "below threshold"):
                    continue
                closes = reaches(edges, consumer, candidate.provider)
                if candidate.status == "closes a cycle":
                    assert closes, (consumer, name, candidate)
                elif candidate.status == "passed over":
                    assert "would close the cycle" in candidate.reason
                elif candidate.status in ("nearest provider", "exact name"):
                    # a near-equal rule passed it over: within NEAR_EQUAL, same tier
                    assert wired is not None
                    assert candidate.score.total <= wired.score.total + NEAR_EQUAL + 1e-9
                    assert candidate.score.total >= wired.score.total
                else:
                    assert wired is not None
                    assert candidate.status in ("tie", "job type", "lower score")
            if wired is None:
                assert all(
                    c.status in ("closes a cycle", "below threshold")
                    for c in explanation.candidates
                )
            else:
                assert explanation.chosen is not None
                assert (explanation.chosen.provider, explanation.chosen.output) == (
                    wired.provider,
                    wired.output,
                )


def documented_rank(
    consumer_job: str | None, the_dep: DependencySpec, job: str | None
) -> tuple[int, int]:
    """(tier, subtier) as the resolver's docstring states them, written out independently."""
    fitted = the_dep.dependency_type.value == "model_artifacts"
    if consumer_job is not None:
        if job == consumer_job:
            return 0, 0
        return (1 if fitted or job is None else 2), 0
    if fitted:
        return 0, 0
    asked = requested_job_type(the_dep)
    if asked is not None:
        return (0 if job in (asked, None) else 1), 0
    hinted = {w for k in the_dep.semantic_keywords for w in normalize_name(k).split("_")}
    hinted &= JOB_TYPES
    if len(hinted) == 1 and job is not None and job not in hinted:
        return 0, 1
    return 0, 0


def test_an_exact_name_beats_a_near_equal_similar_one_of_the_same_provider() -> None:
    """Found by the exhaustive-scoring property below: the exact-name rule skipped an output
    of the chosen provider itself, taking the step for 'upstream of the choice'."""
    specs = {
        "S1": step(
            "Load",
            outs=[
                out("model", "processing_output", keywords=["metrics"]),
                out("input_data", "training_data"),
            ],
        ),
        "S2": step("Load", outs=[out("data", "processing_output")]),
        "Consumer": step(
            "Consumer", deps=[dep("input_data", "processing_output", keywords=["metrics"])]
        ),
    }
    report = DependencyResolver(registry_of(specs)).get_resolution_report()
    (edge,) = report.edges
    assert (edge.provider, edge.output) == ("S1", "input_data")
    assert any(n.startswith("exact name: took S1.input_data") for n in edge.notes), edge.notes


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    providers=contexts(),
    consumer_job=st.sampled_from([None, "training", "calibration"]),
    wanted=st.sampled_from(NAMES),
    kind=st.sampled_from(KINDS),
    keywords=st.lists(st.sampled_from(KEYWORDS), max_size=2, unique=True),
    sources=st.lists(st.sampled_from(STEP_TYPES), max_size=2, unique=True),
)
def test_a_lone_dependency_gets_the_best_output_by_exhaustive_scoring(
    providers: dict[str, StepSpecification],
    consumer_job: str | None,
    wanted: str,
    kind: str,
    keywords: list[str],
    sources: list[str],
) -> None:
    """With no other dependency competing, the index must find exactly what scoring every
    output finds: the first by (job-type tier, -score, keyword subtier, provider, output)."""
    specs = {
        name: step(spec.step_type, outs=list(spec.outputs.values()))
        for name, spec in providers.items()
        if spec.outputs
    }
    consumer = "Consumer" + (f"_{consumer_job}" if consumer_job else "")
    the_dep = dep(wanted, kind, sources=sources, keywords=keywords)
    specs[consumer] = step("Consumer", deps=[the_dep])
    best = None
    qualifying = []
    for name, spec in specs.items():
        if name == consumer:
            continue
        job = step_job_type(name, spec)
        rank, sub = documented_rank(consumer_job, the_dep, job)
        for output_name, output in spec.outputs.items():
            score = score_candidate(the_dep, output, provider_step=name, provider_spec=spec)
            if score is None or score.total < 0.5:
                continue
            key = (rank, -score.total, sub, name, output_name)
            qualifying.append(key)
            best = key if best is None or key < best else best
    exact = name_form(wanted).compact
    if best is not None and name_form(best[4]).compact != exact:
        # an exact name within NEAR_EQUAL (same tier, no worse subtier) beats an alias
        near = [
            k
            for k in qualifying
            if name_form(k[4]).compact == exact
            and k[0] == best[0]
            and k[2] <= best[2]
            and -k[1] >= -best[1] - NEAR_EQUAL - 1e-9
        ]
        best = min(near) if near else best
    report = DependencyResolver(registry_of(specs)).get_resolution_report()
    if best is None:
        assert report.edges == ()
    else:
        (edge,) = report.edges
        assert (edge.provider, edge.output, edge.score.total) == (best[3], best[4], -best[1])


@settings(max_examples=150, deadline=None)
@given(
    providers=contexts(),
    wanted=st.sampled_from(NAMES),
    kind=st.sampled_from(KINDS),
    keywords=st.lists(st.sampled_from([*KEYWORDS, "model input", "processed data"]), max_size=3),
)
def test_bounds_never_underestimate_a_score(
    providers: dict[str, StepSpecification], wanted: str, kind: str, keywords: list[str]
) -> None:
    """The index skips outputs by upper bounds; a bound below the exact score would
    silently drop a candidate, so check the invariant directly, for both bound levels."""
    the_dep = dep(wanted, kind, keywords=keywords)
    index = OutputIndex(providers)
    kinds = index.kinds(the_dep)
    table = BoundTable(
        index,
        form_of_dependency(the_dep),
        the_dep.dependency_type,
        kinds,
        Preference(None, False, False),
        0.0,
    )
    bounded: dict[int, float] = {}
    for count, sids in table._classes.items():
        pending, below = table._bound_each(sids)
        assert not below  # threshold 0: everything may qualify
        for entry in pending:
            bounded[entry[3]] = -entry[1]
            assert -entry[1] <= table._class_bound(count) + 1e-9
    for entry in table.initial:
        if entry[2] == 1:
            bounded[entry[3]] = -entry[1]
    for name, spec in providers.items():
        for output in spec.outputs.values():
            exact = score_candidate(the_dep, output, provider_step=name, provider_spec=spec)
            if exact is None:
                continue
            sid = next(
                item.signature for item in index.outputs_by_step[name] if item.output is output
            )
            assert exact.total <= bounded[sid], (output, exact)
