"""Benchmark: resolve contexts of 100, 1,000 and 5,000 steps made of distinct pipelines.

Run with ``python tests/benchmarks/bench_resolver.py`` (``--sizes 100 1000`` to choose).
Not a test (pytest does not collect ``bench_*.py``) and never timed in CI: machines vary.

Each pipeline (5 steps: loading, preprocessing, training, evaluation, packaging; about 3
dependencies and 2 outputs per step) has its own step types (``Preprocessing17``), its
compatible_sources name its own steps, and its logical names, aliases and keywords are
drawn from varied vocabularies, some with pipeline-specific words, so outputs do not share
one cacheable spec and many outputs across pipelines compete on name evidence. A third of
the pipelines come as ``_training``/``_calibration`` copies.

The baseline, measured in the same run, is the cost of merely visiting every
(dependency, output) pair with one trivial comparison; a resolver that scored every pair
could not be faster than it. Name caches are cleared before each timed resolution.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from regman import RegistryManager
from regman.resolver import DependencyResolver
from regman.scoring import dependency_form, name_form, output_form
from regman.spec import StepSpecification

DOMAINS = [
    "fraud",
    "churn",
    "ctr",
    "ltv",
    "risk",
    "demand",
    "price",
    "spam",
    "search",
    "ranking",
    "credit",
    "abuse",
    "returns",
    "delivery",
    "forecast",
    "review",
    "ads",
    "catalog",
    "buyer",
    "seller",
    "payment",
    "shipping",
    "inventory",
    "session",
    "query",
    "image",
    "text",
    "audio",
]
DATA_NAMES = ["DATA", "data", "raw_data", "input_data", "dataset", "RawDataset", "source_data"]
PROCESSED_NAMES = [
    "processed_data",
    "ProcessedData",
    "preprocessed_output",
    "transformed_data",
    "feature_data",
    "processed_features",
]
MODEL_NAMES = ["model_output", "ModelArtifacts", "model_artifacts", "trained_model", "model"]
EVAL_NAMES = ["evaluation_output", "eval_output", "EvaluationResults", "metrics_output"]
KEYWORDS = {
    "data": ["raw", "dataset", "source", "tabular", "records"],
    "processed": ["processed", "features", "transformed", "training", "tabular"],
    "model": ["model", "artifacts", "trained", "weights"],
    "eval": ["evaluation", "metrics", "scores", "predictions"],
}


def _kw(rng: random.Random, kind: str, domain: str) -> list[str]:
    words = rng.sample(KEYWORDS[kind], k=rng.randint(1, 3))
    return [*words, domain] if rng.random() < 0.5 else words


def _name(rng: random.Random, names: list[str], domain: str) -> str:
    name = rng.choice(names)
    return f"{domain}_{name}" if rng.random() < 0.3 else name


def _out(name: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "logical_name": name,
        "output_type": kind,
        "property_path": f"properties.Outputs['{name}'].S3Uri",
        **extra,
    }


def pipeline(rng: random.Random, index: int, job: str | None) -> dict[str, StepSpecification]:
    """One five-step pipeline with its own step types; ``job`` suffixes its step names."""
    domain = rng.choice(DOMAINS)
    types = [
        f"{t}{index}"
        for t in ("DataLoading", "Preprocessing", "Training", "Evaluation", "Packaging")
    ]
    data, processed = _name(rng, DATA_NAMES, domain), _name(rng, PROCESSED_NAMES, domain)
    model, evaluation = _name(rng, MODEL_NAMES, domain), _name(rng, EVAL_NAMES, domain)
    documents: list[dict[str, Any]] = [
        {
            "outputs": [
                _out(
                    data,
                    "processing_output",
                    aliases=[rng.choice(DATA_NAMES)],
                    semantic_keywords=_kw(rng, "data", domain),
                ),
                _out(f"{domain}_metadata", "processing_output", semantic_keywords=["schema"]),
            ],
        },
        {
            "dependencies": [
                {
                    "logical_name": rng.choice(["input_data", "DATA", "raw_input"]),
                    "dependency_type": "processing_output",
                    "compatible_sources": [types[0]],
                    "semantic_keywords": _kw(rng, "data", domain),
                },
                {
                    "logical_name": "schema_input",
                    "dependency_type": "processing_output",
                    "required": False,
                    "semantic_keywords": ["schema", "metadata"],
                },
                {
                    "logical_name": "preprocessing_config",
                    "dependency_type": "hyperparameters",
                    "required": False,
                    "semantic_keywords": ["config"],
                },
                {
                    "logical_name": f"{domain}_lookup_table",
                    "dependency_type": "processing_output",
                    "required": False,
                },
            ],
            "outputs": [
                _out(
                    processed,
                    "processing_output",
                    aliases=[rng.choice(PROCESSED_NAMES)],
                    semantic_keywords=_kw(rng, "processed", domain),
                ),
                _out("preprocessing_artifacts", "processing_output"),
            ],
        },
        {
            "dependencies": [
                {
                    "logical_name": rng.choice(["input_path", "training_data", "train_input"]),
                    "dependency_type": "training_data",
                    "compatible_sources": [types[1]],
                    "semantic_keywords": _kw(rng, "processed", domain),
                },
                {
                    "logical_name": "hyperparameters_s3_uri",
                    "dependency_type": "hyperparameters",
                    "required": False,
                    "semantic_keywords": ["hyperparameters", "config"],
                },
                {
                    "logical_name": "validation_input",
                    "dependency_type": "training_data",
                    "required": False,
                    "semantic_keywords": ["validation"],
                },
                {
                    "logical_name": "warm_start_model",
                    "dependency_type": "model_artifacts",
                    "required": False,
                    "semantic_keywords": ["pretrained", domain],
                },
            ],
            "outputs": [
                _out(model, "model_artifacts", semantic_keywords=_kw(rng, "model", domain)),
                _out(evaluation, "processing_output", semantic_keywords=_kw(rng, "eval", domain)),
            ],
        },
        {
            "dependencies": [
                {
                    "logical_name": rng.choice(["model_input", "model", "model_artifacts_input"]),
                    "dependency_type": "model_artifacts",
                    "compatible_sources": [types[2]],
                    "semantic_keywords": _kw(rng, "model", domain),
                },
                {
                    "logical_name": rng.choice(["eval_data_input", "processed_data", "test_input"]),
                    "dependency_type": "processing_output",
                    "compatible_sources": [types[1]],
                    "semantic_keywords": _kw(rng, "processed", domain),
                },
                {
                    "logical_name": "eval_config",
                    "dependency_type": "hyperparameters",
                    "required": False,
                },
            ],
            "outputs": [
                _out(
                    _name(rng, EVAL_NAMES, domain),
                    "processing_output",
                    semantic_keywords=_kw(rng, "eval", domain),
                ),
                _out("prediction_output", "processing_output", semantic_keywords=["predictions"]),
            ],
        },
        {
            "dependencies": [
                {
                    "logical_name": "model_input",
                    "dependency_type": "model_artifacts",
                    "compatible_sources": [types[2]],
                    "semantic_keywords": ["model"],
                },
                {
                    "logical_name": "metrics_input",
                    "dependency_type": "processing_output",
                    "compatible_sources": [types[3]],
                    "required": False,
                    "semantic_keywords": ["metrics", "evaluation"],
                },
                {
                    "logical_name": "inference_scripts_input",
                    "dependency_type": "processing_output",
                    "required": False,
                    "semantic_keywords": ["scripts", "inference"],
                },
            ],
            "outputs": [
                _out("packaged_model", "model_artifacts", semantic_keywords=["packaged", "model"]),
                _out("package_manifest", "processing_output", semantic_keywords=["manifest"]),
            ],
        },
    ]
    specs = {}
    for step_type, doc in zip(types, documents, strict=True):
        node = "internal" if doc.get("dependencies") else "source"
        spec = StepSpecification.model_validate({"step_type": step_type, "node_type": node, **doc})
        specs[f"{step_type}_{job}" if job else step_type] = spec
    return specs


def build_context(n_steps: int, seed: int = 0) -> dict[str, StepSpecification]:
    rng = random.Random(seed)
    specs: dict[str, StepSpecification] = {}
    index = 0
    while len(specs) < n_steps:
        jobs: list[str | None] = ["training", "calibration"] if index % 3 == 0 else [None]
        for job in jobs:
            specs.update(pipeline(rng, index, job))
        index += 1
    return dict(list(specs.items())[:n_steps])


def baseline_seconds(specs: dict[str, StepSpecification]) -> float:
    """Visit every (dependency, output) pair with one identity comparison."""
    dep_types = [d.dependency_type for s in specs.values() for d in s.dependencies.values()]
    out_types = [o.output_type for s in specs.values() for o in s.outputs.values()]
    start = time.perf_counter()
    matches = 0
    for dep_type in dep_types:
        for out_type in out_types:
            if out_type is dep_type:
                matches += 1
    return time.perf_counter() - start


def pipeline_of(step: str) -> str:
    """``Training17_calibration`` -> ``17_calibration``: the generated pipeline of a step."""
    stem, sep, job = step.partition("_")
    return "".join(c for c in stem if c.isdigit()) + sep + job


def time_resolution(registry: Any, repeat: int) -> tuple[float, float, Any]:
    """Best of ``repeat`` cold runs (a fresh resolver and empty name caches each time):
    wall-clock seconds and this process's CPU seconds (other load on the machine shows in
    the first, not the second)."""
    best_wall = best_cpu = float("inf")
    report = None
    for _ in range(repeat):
        for cache in (name_form, dependency_form, output_form):
            cache.cache_clear()
        wall, cpu = time.perf_counter(), time.process_time()
        report = DependencyResolver(registry).get_resolution_report()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--repeat", type=int, default=3, help="resolutions per size (best kept)")
    args = parser.parse_args()
    print(
        f"{'steps':>6} {'deps':>6} {'outputs':>7} {'resolve s':>9} {'cpu s':>6} {'baseline s':>10} "
        f"{'ratio':>6} {'wired':>6} {'req. unwired':>12}  cross-pipeline (all/required)"
    )
    for size in args.sizes:
        specs = build_context(size)
        registry = RegistryManager(":memory:").get_registry(f"bench-{size}")
        assert registry is not None
        for step, spec in specs.items():
            registry.register_specification(step, spec)
        registry.list_specifications()  # load the registry's cache outside the timing
        resolve, cpu, report = time_resolution(registry, args.repeat)
        base = baseline_seconds(specs)
        n_deps = sum(len(s.dependencies) for s in specs.values())
        n_outs = sum(len(s.outputs) for s in specs.values())
        crossing = [e for e in report.edges if pipeline_of(e.consumer) != pipeline_of(e.provider)]
        required = sum(1 for e in crossing if e.required)
        print(
            f"{size:>6} {n_deps:>6} {n_outs:>7} {resolve:>9.3f} {cpu:>6.3f} {base:>10.3f} "
            f"{resolve / base:>6.2f} {len(report.edges):>6} "
            f"{len(report.unresolved_required):>12}  {len(crossing)}/{required}"
        )


if __name__ == "__main__":
    main()
