"""The seed's API (../shared/seed/registry_manager.md), example by example, on temporary stores."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path

import pytest

import regman
from regman import (
    RegistryManager,
    SpecificationRegistry,
    clear_context,
    get_context_stats,
    get_default_registry,
    get_pipeline_registry,
    get_registry,
    integrate_with_pipeline_builder,
    list_contexts,
    registry_manager,
)
from tests.conftest import make_spec

training_data_spec = make_spec("CradleDataLoading", outs={"DATA": "processing_output"})
validation_data_spec = make_spec("DummyDataLoading", outs={"DATA": "processing_output"})
preprocess_spec = make_spec(
    "TabularPreprocessing",
    deps={"DATA": "training_data"},
    outs={"processed_data": "processing_output"},
)
training_spec = make_spec("XGBoostTraining", deps={"input_path": "training_data"})


def test_basic_registry_management(manager: RegistryManager) -> None:
    training_registry = manager.get_registry("training_pipeline")
    validation_registry = manager.get_registry("validation_pipeline")
    assert training_registry is not None and validation_registry is not None
    training_registry.register_specification("data_loading", training_data_spec)
    validation_registry.register_specification("data_loading", validation_data_spec)
    assert manager.list_contexts() == ["training_pipeline", "validation_pipeline"]
    # complete isolation: same step name, different specs
    got_training = training_registry.get_specification("data_loading")
    got_validation = validation_registry.get_specification("data_loading")
    assert got_training is not None and got_validation is not None
    assert got_training.step_type == "CradleDataLoading"
    assert got_validation.step_type == "DummyDataLoading"


def test_same_registry_object_every_call(manager: RegistryManager) -> None:
    assert manager.get_registry("a") is manager.get_registry("a")
    assert manager.get_registry("a") is not manager.get_registry("b")
    assert isinstance(manager.get_registry("a"), SpecificationRegistry)


def test_get_registry_default_context(manager: RegistryManager) -> None:
    registry = manager.get_registry()
    assert registry is not None and registry.context_name == "default"


def test_empty_context_exists_at_once(manager: RegistryManager, store_path: Path) -> None:
    manager.get_registry("empty_one")
    assert RegistryManager(store_path).list_contexts() == ["empty_one"]
    assert manager.get_context_stats()["empty_one"]["step_count"] == 0


def test_global_manager_functions(isolated_store: Path) -> None:
    pipeline_registry = get_registry("my_pipeline")
    assert pipeline_registry is not None
    pipeline_registry.register_specification("preprocessing", preprocess_spec)
    pipeline_registry.register_specification("training", training_spec)
    assert list_contexts() == ["my_pipeline"]
    # the global manager writes to $REGMAN_HOME (the autouse fixture's temporary folder); a person
    # finds a step's current spec as plain YAML through the context's head
    context_dir = isolated_store / "contexts" / "my_pipeline"
    head = json.loads((context_dir / "head.json").read_text())
    digest = head["steps"]["training"]["spec"]
    stored = (context_dir / "specs" / "training" / f"{digest}.yaml").read_text()
    assert "step_type: XGBoostTraining" in stored


def test_context_statistics(manager: RegistryManager) -> None:
    registry = manager.get_registry("training_pipeline")
    assert registry is not None
    registry.register_specification("load_a", training_data_spec)
    registry.register_specification("load_b", training_data_spec)
    registry.register_specification("preprocess", preprocess_spec)
    registry.register_specification("train", training_spec)
    registry.register_specification("train", training_spec)  # re-register: no drift
    registry.register_specification(
        "preprocess", make_spec("TabularPreprocessing", deps={"DATA": "training_data"})
    )
    stats = manager.get_context_stats()["training_pipeline"]
    assert stats["step_count"] == 4
    assert stats["step_type_count"] == 3
    assert stats["source_count"] == 2 and stats["internal_count"] == 2
    assert stats["dependency_count"] == 2 and stats["output_count"] == 4
    assert registry.list_step_types() == [
        "CradleDataLoading",
        "TabularPreprocessing",
        "XGBoostTraining",
    ]
    with_types = manager.get_context_stats(with_step_types=True)["training_pipeline"]
    assert with_types == {**stats, "step_types": registry.list_step_types()}


def test_distinct_step_types_count_each_type_once_across_contexts(isolated_store: Path) -> None:
    manager = RegistryManager(isolated_store)
    manager.register_specs("dev", {"a": make_spec("A"), "b": make_spec("B")})
    manager.register_specs("prod", {"a": make_spec("A"), "c": make_spec("C")})
    manager.register_specs("gone", {"d": make_spec("D")})
    manager.clear_context("gone")
    assert manager.distinct_step_types() == ["A", "B", "C"]  # a cleared context counts not
    assert manager.distinct_step_types(["prod"]) == ["A", "C"]
    assert manager.distinct_step_types(["prod", "nosuch"]) == ["A", "C"]
    total = sum(s["step_type_count"] for s in manager.get_context_stats().values())
    assert total == 4  # what summing per-context counts would say


def test_module_level_stats_shape(isolated_store: Path) -> None:
    get_registry("training_pipeline").register_specification("x", training_spec)  # type: ignore[union-attr]
    stats = get_context_stats()
    for context_name, context_stats in stats.items():
        assert context_name == "training_pipeline"
        assert context_stats["step_count"] == 1
        assert context_stats["step_type_count"] == 1


def test_context_cleanup(isolated_store: Path) -> None:
    get_registry("old_pipeline")
    get_registry("keep")
    assert clear_context("old_pipeline") is True
    assert list_contexts() == ["keep"]
    assert clear_context("old_pipeline") is False  # already cleared
    registry_manager.clear_all_contexts()
    assert list_contexts() == []


def test_missing_context_not_created(manager: RegistryManager) -> None:
    assert manager.get_registry("nonexistent_context", create_if_missing=False) is None
    assert manager.list_contexts() == []
    manager.get_registry("there")
    assert manager.get_registry("there", create_if_missing=False) is not None


def test_legacy_functions(isolated_store: Path) -> None:
    assert get_pipeline_registry("my_pipeline").context_name == "my_pipeline"
    assert get_default_registry().context_name == "default"
    assert get_default_registry() is get_registry("default")
    assert list_contexts() == ["default", "my_pipeline"]


def test_clear_then_get_recreates_empty(manager: RegistryManager) -> None:
    registry = manager.get_registry("ctx")
    assert registry is not None
    registry.register_specification("s", training_spec)
    manager.clear_context("ctx")
    fresh = manager.get_registry("ctx")
    assert fresh is not None and fresh.list_step_names() == []
    assert manager.list_contexts() == ["ctx"]


def test_pipeline_builder_decorator(isolated_store: Path) -> None:
    class PipelineConfig:
        def __init__(self, pipeline_name: str) -> None:
            self.pipeline_name = pipeline_name

    @integrate_with_pipeline_builder
    class MyPipelineBuilder:
        def __init__(self, base_config: PipelineConfig) -> None:
            self.base_config = base_config

        def build_pipeline(self) -> object:
            return self.registry.get_specification("data_loading")  # type: ignore[attr-defined]

    get_registry("production_training").register_specification(  # type: ignore[union-attr]
        "data_loading", training_data_spec
    )
    builder = MyPipelineBuilder(PipelineConfig("production_training"))
    assert builder.registry.context_name == "production_training"  # type: ignore[attr-defined]
    assert builder.build_pipeline() == training_data_spec

    @integrate_with_pipeline_builder
    class TrainingPipelineBuilder:  # no __init__ of its own, as in the seed
        def build(self) -> dict[str, object]:
            specs: dict[str, object] = self.registry.list_specifications()  # type: ignore[attr-defined]
            return specs

    no_name = TrainingPipelineBuilder(object())  # type: ignore[call-arg]
    assert no_name.registry.context_name == "default_pipeline"  # type: ignore[attr-defined]
    assert no_name.build() == {}


def test_pipeline_builder_with_manager(tmp_path: Path) -> None:
    other = RegistryManager(tmp_path / "other")

    @integrate_with_pipeline_builder(manager=other)
    class Builder:
        def __init__(self, base_config: object, extra: int = 0) -> None:
            self.extra = extra

    class Config:
        pipeline_name = "tenant_a"

    builder = Builder(Config(), extra=3)
    assert builder.extra == 3
    assert other.list_contexts() == ["tenant_a"]
    assert list_contexts() == []  # the global manager was not touched


def test_environment_and_tenant_patterns(manager: RegistryManager) -> None:
    for name in ("development", "staging", "production", "customer_a", "customer_b"):
        manager.get_registry(name)
    dev, prod = manager.get_registry("development"), manager.get_registry("production")
    assert dev is not None and prod is not None
    dev.register_specification("data_loading", training_data_spec)
    prod.register_specification("data_loading", validation_data_spec)
    assert dev.get_specification("data_loading") != prod.get_specification("data_loading")
    assert manager.get_registry("staging").list_step_names() == []  # type: ignore[union-attr]


def test_seed_thread_safety_example(isolated_store: Path) -> None:
    task_spec = training_spec

    def worker_function(context_name: str) -> None:
        registry = get_registry(f"worker_{context_name}")
        assert registry is not None
        registry.register_specification("task", task_spec)

    threads = [threading.Thread(target=worker_function, args=(str(i),)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert list_contexts() == [f"worker_{i}" for i in range(5)]


@pytest.mark.parametrize("same_context", [True, False])
def test_threads_stress(manager: RegistryManager, same_context: bool) -> None:
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            registry = manager.get_registry("shared" if same_context else f"ctx_{t}")
            assert registry is not None
            for i in range(200):
                registry.register_specification(f"s_{t}_{i}", training_spec)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stats = manager.get_context_stats()
    if same_context:
        assert stats["shared"]["step_count"] == 3200
        assert len(manager.get_registry("shared")) == 3200  # type: ignore[arg-type]
    else:
        assert sorted(stats) == sorted(f"ctx_{t}" for t in range(16))
        assert all(s["step_count"] == 200 for s in stats.values())


def _process_worker(store: str, worker: int) -> None:
    registry = RegistryManager(store).get_registry("shared")
    assert registry is not None
    for i in range(100):
        registry.register_specification(f"p{worker}_{i}", training_spec)


def test_processes_stress(store_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_process_worker, args=(str(store_path), w)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    manager = RegistryManager(store_path)
    assert manager.get_context_stats()["shared"]["step_count"] == 400
    assert len(manager.get_registry("shared").list_specifications()) == 400  # type: ignore[union-attr]
    assert not list(store_path.rglob(".tmp-*"))


def test_second_manager_sees_changes(store_path: Path) -> None:
    first, second = RegistryManager(store_path), RegistryManager(store_path)
    seen_by_second = second.get_registry("shared")
    assert seen_by_second is not None and seen_by_second.list_step_names() == []
    first.get_registry("shared").register_specification("a", training_spec)  # type: ignore[union-attr]
    assert seen_by_second.list_step_names() == ["a"]
    first.get_registry("shared").register_specification("a", preprocess_spec)  # type: ignore[union-attr]
    assert seen_by_second.get_specification("a") == preprocess_spec
    first.clear_context("shared")
    assert second.list_contexts() == []
    assert seen_by_second.get_specification("a") is None
    assert second.get_registry("shared", create_if_missing=False) is None


def test_memory_store() -> None:
    manager = RegistryManager(":memory:")
    manager.get_registry("a").register_specification("s", training_spec)  # type: ignore[union-attr]
    assert manager.get_context_stats()["a"]["step_count"] == 1
    assert manager.clear_context("a") and manager.list_contexts() == []


def test_configure_points_global_manager(tmp_path: Path) -> None:
    manager = regman.configure(tmp_path / "elsewhere")
    assert manager is registry_manager
    get_registry("x")
    assert (tmp_path / "elsewhere" / "contexts" / "x").is_dir()


def test_import_touches_no_disk(tmp_path: Path) -> None:
    import subprocess
    import sys

    home = tmp_path / "never"
    code = "import regman; m = regman.RegistryManager(); print(regman.registry_manager is not None)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"REGMAN_HOME": str(home), "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "True"
    assert not home.exists()


def test_reprs_show_counts_for_a_debugger(manager: RegistryManager, store_path: Path) -> None:
    registry = manager.get_registry("training")
    assert registry is not None
    registry.register_specification("train", training_spec)
    registry.register_specification("prep", preprocess_spec)
    manager.get_registry("dev")
    assert repr(registry) == "SpecificationRegistry(context='training', steps=2)"
    assert repr(registry.at(2)) == "SpecificationRegistry(context='training', steps=1, revision=2)"
    assert repr(manager) == f"RegistryManager(contexts=2, store={str(store_path)!r})"
    # a damaged head does not break the repr
    (store_path / "contexts" / "training" / "head.json").write_text("{")
    assert repr(registry) == "SpecificationRegistry(context='training', steps=?)"
