"""Comparing contexts."""

from __future__ import annotations

from regman import RegistryManager
from regman.compare import FieldChange, diff_contexts, diff_documents
from tests.conftest import make_spec


def test_diff_documents_leaves() -> None:
    left = {"a": 1, "b": {"c": [1, 2], "d": "x"}, "only_left": True}
    right = {"a": 1, "b": {"c": [1, 3], "d": "x"}, "only_right": None}
    assert list(diff_documents(left, right)) == [
        FieldChange("b.c", [1, 2], [1, 3]),
        FieldChange("only_left", True, "<missing>"),
        FieldChange("only_right", "<missing>", None),
    ]
    assert list(diff_documents(left, left)) == []


def test_diff_contexts() -> None:
    manager = RegistryManager(":memory:")
    dev, prod = manager.get_registry("dev"), manager.get_registry("prod")
    assert dev is not None and prod is not None
    for registry in (dev, prod):
        registry.register_specification("same", make_spec("Same"))
    dev.register_specification("changed", make_spec("A"))
    prod.register_specification("changed", make_spec("B"))
    dev.register_specification("dev_only", make_spec())
    result = diff_contexts(dev, prod)
    assert result.same == ["same"] and result.only_left == ["dev_only"]
    assert result.only_right == []
    assert [c.path for c in result.changed["changed"]] == ["step_type"]
    assert not result.identical
    assert diff_contexts(dev, prod, ["same"]).identical
    assert result.to_dict()["changed"]["changed"][0] == {
        "path": "step_type",
        "left": "A",
        "right": "B",
    }
