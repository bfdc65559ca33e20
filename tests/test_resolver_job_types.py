"""Job types (issue 13, items 2 and 3): open to any word a context uses, for data only.

Each pipeline here is wired wrong by the rules before this round (job types limited to
five words; every job type demoting fitted artifacts; keywords demoting job types).
"""

from __future__ import annotations

import pytest

from regman import DependencyResolver, StepSpecification
from regman.scoring import job_types_of
from tests.test_resolver import dep, out, registry_of, step, wiring


def preprocessing(job: str, *, keywords: tuple[str, ...] = ()) -> dict[str, StepSpecification]:
    return {
        f"TabularPreprocessing_{job}": step(
            "TabularPreprocessing",
            deps=[dep("DATA", "processing_output", sources=["CradleDataLoading"])],
            outs=[out("processed_data", "processing_output", keywords=list(keywords))],
        ),
        f"CradleDataLoading_{job}": step(
            "CradleDataLoading", outs=[out("DATA", "processing_output")]
        ),
    }


TRAINING = step(
    "XGBoostTraining",
    deps=[
        dep(
            "input_path",
            "training_data",
            sources=["TabularPreprocessing"],
            keywords=["data", "training"],
        )
    ],
    outs=[out("model_output", "model_artifacts", keywords=["model"])],
)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # cursus' <StepType>_<job type>: any word
        ({"TabularPreprocessing_evaluation": "TabularPreprocessing"}, "evaluation"),
        ({"TabularPreprocessing-FineTune": "TabularPreprocessing"}, "finetune"),
        ({"XGBoostTraining_pretrain": "XGBoostTraining"}, "pretrain"),
        # a replicated branch: two bases carry the suffix, one of them a job type too
        ({"load_munged": "Loader", "prep_munged": "Prep", "load_training": "Loader"}, "munged"),
        ({"load_munged": "Loader", "prep_munged": "Prep"}, None),
        ({"data_loading": "Loader", "model_loading": "ModelLoader"}, None),
        # the well-known ones, whatever the step type
        ({"prep_train": "Prep"}, "training"),
        # a plain step name, not a job type
        ({"model_evaluation": "XGBoostModelEval"}, None),
        ({"data_loading": "CradleDataLoading"}, None),
    ],
)
def test_job_types_of_a_context(steps: dict[str, str], expected: str | None) -> None:
    specs = {name: step(t, outs=[out("x", "processing_output")]) for name, t in steps.items()}
    first = sorted(steps)[0]
    assert job_types_of(specs)[first] == expected


def test_a_declared_job_type_is_recognised_in_other_names() -> None:
    specs = {
        "labeling_tagging": step("Labeler", outs=[out("labels", "processing_output")]),
        "scorer": step("Scorer", outs=[out("scores", "processing_output")], job_type="Tagging"),
        "variant_user": StepSpecification(
            step_type="Other",
            node_type="source",
            outputs=[out("y", "processing_output")],
            variants={"pseudo": {"description": "the pseudo-label branch"}},
        ),
        "merge_pseudo": step("Merge", outs=[out("z", "processing_output")]),
    }
    jobs = job_types_of(specs)
    assert jobs["labeling_tagging"] == "tagging"  # declared by the scorer's job_type
    assert jobs["scorer"] == "tagging"
    assert jobs["merge_pseudo"] == "pseudo"  # declared by a variant key
    assert jobs["variant_user"] is None


def test_an_open_job_type_keeps_training_data_on_the_training_branch() -> None:
    specs = {
        **preprocessing("evaluation"),
        **preprocessing("training"),
        "XGBoostTraining": TRAINING,
    }
    for order in (sorted(specs), sorted(specs, reverse=True)):
        edges = wiring(DependencyResolver(registry_of(specs, order)).get_resolution_report())
        # equal scores; 'evaluation' sorts first by name, 'training' is what is asked for
        assert edges[("XGBoostTraining", "input_path")] == (
            "TabularPreprocessing_training",
            "processed_data",
        )
    explanation = DependencyResolver(registry_of(specs)).explain("XGBoostTraining", "input_path")
    statuses = {c.provider: c.status for c in explanation.candidates}
    assert statuses["TabularPreprocessing_evaluation"] == "job type"


def test_a_step_of_an_open_job_type_takes_its_own_branchs_data() -> None:
    evaluation = step(
        "XGBoostModelEval",
        deps=[
            dep("processed_data", "processing_output", sources=["TabularPreprocessing"]),
            dep("model_input", "model_artifacts", sources=["XGBoostTraining"]),
        ],
        outs=[out("metrics", "processing_output")],
    )
    specs = {
        **preprocessing("evaluation"),
        # the training branch's output scores higher for 'processed_data' (a keyword more)
        **preprocessing("training", keywords=("processed",)),
        "XGBoostTraining": TRAINING,
        "XGBoostModelEval_evaluation": evaluation,
    }
    resolver = DependencyResolver(registry_of(specs))
    edges = wiring(resolver.get_resolution_report())
    assert edges[("XGBoostModelEval_evaluation", "processed_data")] == (
        "TabularPreprocessing_evaluation",
        "processed_data",
    )
    explanation = resolver.explain("XGBoostModelEval_evaluation", "processed_data")
    assert explanation.step_job_type == "evaluation"
    loser = next(c for c in explanation.candidates if c.provider == "TabularPreprocessing_training")
    assert loser.status == "job type"
    assert explanation.chosen is not None and loser.score.total > explanation.chosen.score.total


def risk_table(job: str) -> StepSpecification:
    deps = [dep("data_input", "processing_output", sources=["TabularPreprocessing"])]
    if job != "training":
        deps.append(dep("model_artifacts_input", "model_artifacts", sources=["RiskTableMapping"]))
    return step(
        "RiskTableMapping",
        deps=deps,
        outs=[
            out("processed_data", "processing_output"),
            out("model_artifacts_output", "model_artifacts", keywords=["risk", "table"]),
        ],
    )


def test_fitted_artifacts_cross_branches() -> None:
    """The calibration branch's risk tables are the ones fitted on training data."""
    specs = {
        **preprocessing("training"),
        **preprocessing("calibration"),
        "RiskTableMapping_training": risk_table("training"),
        "RiskTableMapping_calibration": risk_table("calibration"),
        # a job-less provider whose model qualifies by name (0.5+): it took the input
        # before, as 'no job type' ranked above 'another job type'
        "XGBoostTraining": step(
            "XGBoostTraining",
            deps=[dep("input_path", "training_data", sources=["RiskTableMapping"])],
            outs=[out("model_artifacts", "model_artifacts")],
        ),
    }
    resolver = DependencyResolver(registry_of(specs))
    edges = wiring(resolver.get_resolution_report())
    assert edges[("RiskTableMapping_calibration", "model_artifacts_input")] == (
        "RiskTableMapping_training",
        "model_artifacts_output",
    )
    # data still follows the branch
    assert edges[("RiskTableMapping_calibration", "data_input")] == (
        "TabularPreprocessing_calibration",
        "processed_data",
    )
    explanation = resolver.explain("RiskTableMapping_calibration", "model_artifacts_input")
    other = next(c for c in explanation.candidates if c.provider == "XGBoostTraining")
    assert other.status == "lower score"


def test_fitted_artifacts_of_the_consumers_own_job_type_still_come_first() -> None:
    def trainer(job: str) -> dict[str, StepSpecification]:
        return {
            f"XGBoostTraining_{job}": step(
                "XGBoostTraining",
                deps=[dep("input_path", "training_data", sources=["TabularPreprocessing"])],
                outs=[out("model_output", "model_artifacts")],
            ),
            **preprocessing(job),
        }

    specs = {
        **trainer("pretrain"),
        **trainer("finetune"),
        "XGBoostModelEval_pretrain": step(
            "XGBoostModelEval",
            deps=[dep("model_input", "model_artifacts", sources=["XGBoostTraining"])],
            outs=[out("metrics", "processing_output")],
        ),
    }
    edges = wiring(DependencyResolver(registry_of(specs)).get_resolution_report())
    # 'finetune' would win the name-order tie
    assert edges[("XGBoostModelEval_pretrain", "model_input")] == (
        "XGBoostTraining_pretrain",
        "model_output",
    )


def test_a_keyword_naming_a_job_type_does_not_demote_a_better_provider() -> None:
    specs = {
        "TabularPreprocessing_testing": step(
            "TabularPreprocessing", outs=[out("processed_data", "processing_output")]
        ),
        "Sampler": step(
            "Sampler",
            outs=[out("inference_samples", "processing_output", keywords=["inference"])],
        ),
        "Inference": step(
            "BatchTransform",
            deps=[dep("processed_data", "processing_output", keywords=["inference", "data"])],
        ),
    }
    report = DependencyResolver(registry_of(specs)).get_resolution_report()
    (edge,) = report.edges
    sampler = next(
        c
        for c in DependencyResolver(registry_of(specs))
        .explain("Inference", "processed_data")
        .candidates
        if c.provider == "Sampler"
    )
    assert sampler.status == "lower score" and sampler.score.total >= 0.5
    # the sampler qualifies on the keyword alone (0.53), the exact name scores more (0.55)
    assert (edge.provider, edge.output) == ("TabularPreprocessing_testing", "processed_data")
