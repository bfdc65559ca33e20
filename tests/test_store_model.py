"""The seed's API on the file store against a model, with two managers on one folder.

Random sequences of register / remove / clear / clear-all / get / stats run
alternately through two RegistryManagers opened on the same folder (as a pipeline
process and a command-line run would), and after every step both must agree with a
plain dict model: contexts listed, specs returned, statistics, and revisions (every
acknowledged change, including a context that ``get_registry`` creates, is exactly
one revision; history is dense from 1). The revision-level model over every backend,
with restore, rollback, batches and purge, is ``tests/store/test_store_state_machine.py``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from regman import RegistryManager, StepSpecification
from tests.conftest import make_spec

CONTEXTS = st.sampled_from(["training", "production", "customer_a"])
STEPS = st.sampled_from(["load", "preprocess", "train", "Evaluate"])
SPECS: list[StepSpecification] = [
    make_spec("CradleDataLoading", outs={"DATA": "processing_output"}),
    make_spec("CradleDataLoading", outs={"DATA": "processing_output", "META": "custom_property"}),
    make_spec(
        "TabularPreprocessing",
        deps={"DATA": "processing_output"},
        outs={"processed_data": "processing_output"},
    ),
    make_spec("XGBoostTraining", deps={"input_path": "training_data"}, outs={}),
    make_spec("Notify", deps={}, outs={}),
]
SPEC_INDEXES = st.integers(min_value=0, max_value=len(SPECS) - 1)


def expected_stats(specs: dict[str, StepSpecification]) -> dict[str, int]:
    nodes = [s.node_type.value for s in specs.values()]
    return {
        "step_count": len(specs),
        "step_type_count": len({s.step_type for s in specs.values()}),
        "source_count": nodes.count("source"),
        "internal_count": nodes.count("internal"),
        "sink_count": nodes.count("sink"),
        "singular_count": nodes.count("singular"),
        "dependency_count": sum(len(s.dependencies) for s in specs.values()),
        "output_count": sum(len(s.outputs) for s in specs.values()),
    }


class TwoManagersOneFolder(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="regman-model-")
        self.managers = [RegistryManager(self.folder), RegistryManager(self.folder)]
        self.turn = 0
        self.model: dict[str, dict[str, StepSpecification]] = {}
        self.revisions: dict[str, int] = {}  # cleared contexts keep theirs

    def teardown(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def next_manager(self) -> RegistryManager:
        """Operations alternate between the two managers."""
        self.turn += 1
        return self.managers[self.turn % 2]

    def registry(self, manager: RegistryManager, context: str) -> Any:
        registry = manager.get_registry(context)
        assert registry is not None
        if context not in self.model:  # get_registry creates the context: one revision
            self.model[context] = {}
            self.bump(context)
        return registry

    def bump(self, context: str) -> None:
        self.revisions[context] = self.revisions.get(context, 0) + 1

    @rule(context=CONTEXTS, step=STEPS, which=SPEC_INDEXES)
    def register(self, context: str, step: str, which: int) -> None:
        spec = SPECS[which]
        registry = self.registry(self.next_manager(), context)
        outcome = registry.register_specification(step, spec)
        current = self.model[context].get(step)
        expected = "created" if current is None else "unchanged" if current == spec else "updated"
        assert outcome == expected
        self.model[context][step] = spec
        if outcome != "unchanged":
            self.bump(context)

    @rule(context=CONTEXTS, step=STEPS)
    def remove(self, context: str, step: str) -> None:
        registry = self.registry(self.next_manager(), context)
        present = step in self.model[context]
        assert registry.remove_specification(step) == present
        self.model[context].pop(step, None)
        if present:
            self.bump(context)

    @rule(context=CONTEXTS)
    def clear(self, context: str) -> None:
        assert self.next_manager().clear_context(context) == (context in self.model)
        if self.model.pop(context, None) is not None:
            self.bump(context)

    @rule()
    def clear_all(self) -> None:
        self.next_manager().clear_all_contexts()
        for context in self.model:
            self.bump(context)
        self.model.clear()

    @rule(context=CONTEXTS, step=STEPS)
    def get(self, context: str, step: str) -> None:
        registry = self.registry(self.next_manager(), context)
        assert registry.get_specification(step) == self.model[context].get(step)

    @rule(context=CONTEXTS)
    def list_specs(self, context: str) -> None:
        registry = self.registry(self.next_manager(), context)
        assert registry.list_specifications() == dict(sorted(self.model[context].items()))
        assert registry.list_step_types() == sorted(
            {s.step_type for s in self.model[context].values()}
        )

    @rule()
    def stats(self) -> None:
        stats = self.next_manager().get_context_stats()
        assert sorted(stats) == sorted(self.model)
        for context, specs in self.model.items():
            got = {k: stats[context][k] for k in expected_stats(specs)}
            assert got == expected_stats(specs), context

    @invariant()
    def both_managers_list_the_model_contexts(self) -> None:
        for manager in self.managers:
            assert manager.list_contexts() == sorted(self.model)

    @invariant()
    def every_change_is_one_revision(self) -> None:
        manager = self.managers[self.turn % 2]
        for context in ("training", "production", "customer_a"):
            expected = self.revisions.get(context, 0)
            assert manager.revision(context) == expected, context
            if expected:
                history = manager.history(context)
                assert [r.revision for r in history] == list(range(expected, 0, -1))


STRESS = os.environ.get("REGMAN_STRESS") == "1"
TwoManagersOneFolder.TestCase.settings = settings(
    max_examples=200 if STRESS else 15, stateful_step_count=40 if STRESS else 20, deadline=None
)
test_store_against_model = TwoManagersOneFolder.TestCase
