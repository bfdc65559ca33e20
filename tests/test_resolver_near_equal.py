"""Between near-equal candidates (issue 13, items 4-6): the nearest provider on the data
path, then an exact name, decide before a small score difference or the name order."""

from __future__ import annotations

import itertools

from regman import DependencyResolver, StepSpecification
from regman.resolver import NEAR_EQUAL
from tests.test_resolver import dep, out, registry_of, step, wiring

PREPROCESSING = step(
    "TabularPreprocessing",
    deps=[dep("DATA", "processing_output", sources=["CradleDataLoading"])],
    outs=[out("processed_data", "processing_output", keywords=["processed", "tabular", "data"])],
)


def pass_through(step_type: str, source: str, *keywords: str) -> StepSpecification:
    """A step that takes processed data and hands on processed data of its own."""
    return step(
        step_type,
        deps=[dep("processed_data", "processing_output", sources=[source])],
        outs=[out("processed_data", "processing_output", keywords=list(keywords))],
    )


def trainer(*sources: str) -> StepSpecification:
    return step(
        "XGBoostTraining",
        deps=[
            dep(
                "input_path",
                "training_data",
                sources=list(sources),
                keywords=["processed", "tabular"],
            )
        ],
        outs=[out("model_output", "model_artifacts")],
    )


def chain(*extra: tuple[str, StepSpecification]) -> dict[str, StepSpecification]:
    return {
        "loading": step("CradleDataLoading", outs=[out("DATA", "processing_output")]),
        "preprocessing": PREPROCESSING,
        **dict(extra),
    }


def test_a_consumer_takes_the_pass_through_not_its_ancestor() -> None:
    specs = chain(
        ("label_rules", pass_through("LabelRuleset", "TabularPreprocessing", "processed")),
        ("training", trainer("TabularPreprocessing", "LabelRuleset")),
    )
    resolver = DependencyResolver(registry_of(specs))
    explanation = resolver.explain("training", "input_path")
    scores = {c.provider: c.score.total for c in explanation.candidates}
    # the ancestor scores a little more (one keyword more): the shortcut won before
    assert 0 < scores["preprocessing"] - scores["label_rules"] <= NEAR_EQUAL
    edges = wiring(resolver.get_resolution_report())
    assert edges[("label_rules", "processed_data")] == ("preprocessing", "processed_data")
    assert edges[("training", "input_path")] == ("label_rules", "processed_data")
    statuses = {c.provider: c.status for c in explanation.candidates}
    assert (statuses["label_rules"], statuses["preprocessing"]) == ("chosen", "nearest provider")
    assert explanation.chosen is not None
    assert "label_rules passes it on" in explanation.chosen.reason
    (edge,) = [e for e in resolver.get_resolution_report().edges if e.consumer == "training"]
    assert any(n.startswith("nearest provider") for n in edge.notes)


def test_the_nearest_provider_down_a_chain_whatever_the_order() -> None:
    specs = chain(
        ("label_rules", pass_through("LabelRuleset", "TabularPreprocessing", "processed")),
        ("sampling", pass_through("StratifiedSampling", "LabelRuleset", "processed")),
        ("training", trainer("TabularPreprocessing", "LabelRuleset", "StratifiedSampling")),
    )
    reports = [
        DependencyResolver(registry_of(specs, order)).get_resolution_report().to_dict()
        for order in itertools.islice(itertools.permutations(specs), 0, None, 17)
    ]
    assert all(r == reports[0] for r in reports)
    edges = wiring(DependencyResolver(registry_of(specs)).get_resolution_report())
    assert edges[("sampling", "processed_data")] == ("label_rules", "processed_data")
    assert edges[("training", "input_path")] == ("sampling", "processed_data")


def test_a_clearly_better_ancestor_is_kept() -> None:
    # the pass-through is not a declared compatible source: far below the ancestor
    specs = chain(
        ("label_rules", pass_through("LabelRuleset", "TabularPreprocessing", "processed")),
        ("training", trainer("TabularPreprocessing")),
    )
    resolver = DependencyResolver(registry_of(specs))
    explanation = resolver.explain("training", "input_path")
    scores = {c.provider: c.score.total for c in explanation.candidates}
    assert scores["preprocessing"] - scores["label_rules"] > NEAR_EQUAL
    edges = wiring(resolver.get_resolution_report())
    assert edges[("training", "input_path")] == ("preprocessing", "processed_data")


def test_a_pass_through_downstream_of_the_consumer_is_never_taken() -> None:
    # 'report' takes the trainer's model and hands on processed data: taking it would
    # make a cycle training -> report -> training
    report = step(
        "Report",
        deps=[
            dep("processed_data", "processing_output", sources=["TabularPreprocessing"]),
            dep("model", "model_artifacts", sources=["XGBoostTraining"]),
        ],
        outs=[out("processed_data", "processing_output", keywords=["processed"])],
    )
    specs = chain(("report", report), ("training", trainer("TabularPreprocessing", "Report")))
    report_ = DependencyResolver(registry_of(specs)).get_resolution_report()
    edges = wiring(report_)
    assert edges[("report", "model")] == ("training", "model_output")
    assert edges[("training", "input_path")] == ("preprocessing", "processed_data")
    position = {name: i for i, name in enumerate(report_.order)}
    assert all(position[e.provider] < position[e.consumer] for e in report_.edges)


def test_an_exact_name_beats_an_alias() -> None:
    specs = {
        # matches 'processed_data' only through an alias, with a keyword more
        "loader": step(
            "CradleDataLoading",
            outs=[
                out(
                    "loaded_output",
                    "processing_output",
                    aliases=["processed_data"],
                    keywords=["processed"],
                )
            ],
        ),
        "preprocessing": step(
            "TabularPreprocessing",
            deps=[dep("raw", "processing_output", sources=["Source"])],
            outs=[out("processed_data", "processing_output")],
        ),
        "source": step("Source", outs=[out("raw", "processing_output")]),
        "training": step(
            "Trainer", deps=[dep("processed_data", "processing_output", keywords=["processed"])]
        ),
    }
    resolver = DependencyResolver(registry_of(specs))
    explanation = resolver.explain("training", "processed_data")
    scores = {c.provider: c.score.total for c in explanation.candidates}
    assert 0 < scores["loader"] - scores["preprocessing"] <= NEAR_EQUAL
    edges = wiring(resolver.get_resolution_report())
    assert edges[("training", "processed_data")] == ("preprocessing", "processed_data")
    statuses = {c.provider: (c.status, c.reason) for c in explanation.candidates}
    assert statuses["loader"][0] == "exact name"
    assert "only through an alias" in statuses["loader"][1]


def test_an_exact_name_does_not_undo_the_nearest_provider() -> None:
    # the pass-through renames its output; the ancestor's is named like the dependency
    specs = chain(
        (
            "label_rules",
            step(
                "LabelRuleset",
                deps=[dep("processed_data", "processing_output", sources=["TabularPreprocessing"])],
                outs=[
                    out(
                        "labeled_data",
                        "processing_output",
                        aliases=["processed_data"],
                        keywords=["processed", "tabular"],
                    )
                ],
            ),
        ),
        (
            "training",
            step(
                "XGBoostTraining",
                deps=[
                    dep(
                        "processed_data",
                        "processing_output",
                        sources=["TabularPreprocessing", "LabelRuleset"],
                        keywords=["processed", "tabular"],
                    )
                ],
            ),
        ),
    )
    resolver = DependencyResolver(registry_of(specs))
    explanation = resolver.explain("training", "processed_data")
    scores = {c.provider: c.score.total for c in explanation.candidates}
    assert abs(scores["preprocessing"] - scores["label_rules"]) <= NEAR_EQUAL
    edges = wiring(resolver.get_resolution_report())
    assert edges[("training", "processed_data")] == ("label_rules", "labeled_data")


def test_a_tie_a_rule_breaks_is_no_tie_and_one_that_remains_is_reported() -> None:
    same = out("processed_data", "processing_output", keywords=["processed"])
    specs = {
        "source": step("Source", outs=[out("DATA", "processing_output")]),
        # 'a_prep' sorts first: it won the tie by name before
        "a_prep": step(
            "Prep", deps=[dep("DATA", "processing_output", sources=["Source"])], outs=[same]
        ),
        "b_rules": step(
            "Rules",
            deps=[dep("processed_data", "processing_output", sources=["Prep"])],
            outs=[same],
        ),
        "consumer": step("Consumer", deps=[dep("processed_data", "processing_output")]),
    }
    report = DependencyResolver(registry_of(specs)).get_resolution_report()
    (edge,) = [e for e in report.edges if e.consumer == "consumer"]
    assert (edge.provider, edge.output) == ("b_rules", "processed_data")
    assert not any(n.startswith("tied at") for n in edge.notes)
    assert edge.tied_with is None
    # two unrelated providers, equal in every respect: the tie stays and is said
    specs["b_rules"] = step(
        "Rules", deps=[dep("DATA", "processing_output", sources=["Source"])], outs=[same]
    )
    resolver = DependencyResolver(registry_of(specs))
    (edge,) = [e for e in resolver.get_resolution_report().edges if e.consumer == "consumer"]
    assert (edge.provider, edge.output) == ("a_prep", "processed_data")
    assert any(n.startswith("tied at") for n in edge.notes)
    assert edge.tied_with == "b_rules.processed_data"
    assert edge.to_dict()["tied_with"] == "b_rules.processed_data"
    statuses = {
        c.provider: c.status for c in resolver.explain("consumer", "processed_data").candidates
    }
    assert (statuses["a_prep"], statuses["b_rules"]) == ("chosen", "tie")
