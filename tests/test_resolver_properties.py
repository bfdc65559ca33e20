"""Properties of any wiring with this round's rules in play: open job types, variants,
fitted artifacts and pass-through chains. Acyclic, the same whatever the registration
order, and explain agrees with the wiring."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regman import DependencyResolver, StepSpecification
from regman.resolver import NEAR_EQUAL
from tests.test_resolver import dep, out, reaches, registry_of, step

JOBS = [None, "training", "evaluation", "finetune"]
NAMES = ["processed_data", "data", "model_artifacts_input", "model_input", "features"]
OUT_NAMES = ["processed_data", "data_output", "model_artifacts_output", "model", "features"]
KEYWORDS = ["processed", "training", "inference", "model", "features", "data"]
TYPES = ["TabularPreprocessing", "LabelRuleset", "RiskTableMapping", "XGBoostTraining"]
KINDS = ["processing_output", "model_artifacts", "training_data"]


@st.composite
def pipelines(draw: st.DrawFn) -> dict[str, StepSpecification]:
    specs: dict[str, StepSpecification] = {}
    for index in range(draw(st.integers(2, 7))):
        step_type = draw(st.sampled_from(TYPES))
        job = draw(st.sampled_from(JOBS))
        name = f"{step_type}{index}" + (f"_{job}" if job else "")
        deps = [
            dep(
                n,
                draw(st.sampled_from(KINDS)),
                sources=draw(st.lists(st.sampled_from(TYPES), max_size=2, unique=True)),
                keywords=draw(st.lists(st.sampled_from(KEYWORDS), max_size=2, unique=True)),
                required=draw(st.booleans()),
            )
            for n in draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True))
        ]
        outs = [
            out(
                n,
                draw(st.sampled_from(KINDS)),
                aliases=[a for a in draw(st.lists(st.sampled_from(NAMES), max_size=1)) if a != n],
                keywords=draw(st.lists(st.sampled_from(KEYWORDS), max_size=2, unique=True)),
            )
            for n in draw(st.lists(st.sampled_from(OUT_NAMES), min_size=1, max_size=2, unique=True))
        ]
        spec = step(step_type, deps, outs)
        if len(deps) > 0 and draw(st.booleans()):
            first = deps[0].logical_name
            keywords = draw(st.lists(st.sampled_from(KEYWORDS), max_size=2, unique=True))
            variant = {"spec": {"dependencies": {first: {"semantic_keywords": keywords}}}}
            spec = StepSpecification(
                **{**spec.model_dump(), "variants": {draw(st.sampled_from(JOBS[1:])): variant}}
            )
        specs[name] = spec
    return specs


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=pipelines(), data=st.data())
def test_wiring_is_acyclic_order_independent_and_explained(
    specs: dict[str, StepSpecification], data: st.DataObject
) -> None:
    resolver = DependencyResolver(registry_of(specs))
    report = resolver.get_resolution_report()
    position = {name: i for i, name in enumerate(report.order)}
    edges = [(e.provider, e.consumer) for e in report.edges]
    assert all(position[p] < position[c] for p, c in edges)

    shuffled = data.draw(st.permutations(list(specs)))
    again = DependencyResolver(registry_of(specs, shuffled)).get_resolution_report()
    assert again.to_dict() == report.to_dict()

    chosen = {(e.consumer, e.dependency): e for e in report.edges}
    for consumer in specs:
        effective = resolver.effective_specification(consumer)
        for name in effective.dependencies:
            explanation = resolver.explain(consumer, name)
            edge = chosen.get((consumer, name))
            if edge is None:
                assert explanation.chosen is None
                continue
            assert explanation.chosen is not None
            assert (explanation.chosen.provider, explanation.chosen.output) == (
                edge.provider,
                edge.output,
            )
            assert explanation.chosen.score.total == edge.score.total
            for candidate in explanation.candidates:
                if candidate.status == "closes a cycle":
                    assert reaches(edges, consumer, candidate.provider), candidate
                elif candidate.status in ("nearest provider", "exact name"):
                    assert 0 <= candidate.score.total - edge.score.total <= NEAR_EQUAL + 1e-9
