"""regman: isolated, file-backed registries of pipeline step specifications, one per context.

``import regman`` is cheap and touches no disk: the spec models (pydantic) and the
resolver load on first use of their names.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from regman._version import __version__
from regman.errors import (
    ConflictError,
    ContextNotFoundError,
    DependencyResolutionError,
    InvalidNameError,
    LockTimeoutError,
    NotFoundError,
    RegmanError,
    SpecError,
    StepNotFoundError,
    StoreError,
    StoreVersionError,
)
from regman.manager import (
    RegistryManager,
    clear_context,
    configure,
    get_context_stats,
    get_default_registry,
    get_pipeline_registry,
    get_registry,
    integrate_with_pipeline_builder,
    list_contexts,
    registry_manager,
)
from regman.registry import SpecificationRegistry

if TYPE_CHECKING:
    from regman.resolution import PropertyReference
    from regman.resolver import DependencyResolver
    from regman.spec import (
        DependencySpec,
        DependencyType,
        NodeType,
        OutputSpec,
        StepSpecification,
    )
    from regman.specfile import load_spec_file

_LAZY = {
    "DependencySpec": "regman.spec",
    "DependencyType": "regman.spec",
    "NodeType": "regman.spec",
    "OutputSpec": "regman.spec",
    "StepSpecification": "regman.spec",
    "load_spec_file": "regman.specfile",
    "DependencyResolver": "regman.resolver",
    "PropertyReference": "regman.resolution",
}

__all__ = [
    "ConflictError",
    "ContextNotFoundError",
    "DependencyResolutionError",
    "DependencyResolver",
    "DependencySpec",
    "DependencyType",
    "InvalidNameError",
    "LockTimeoutError",
    "NodeType",
    "NotFoundError",
    "OutputSpec",
    "PropertyReference",
    "RegistryManager",
    "RegmanError",
    "SpecError",
    "SpecificationRegistry",
    "StepNotFoundError",
    "StepSpecification",
    "StoreError",
    "StoreVersionError",
    "__version__",
    "clear_context",
    "configure",
    "get_context_stats",
    "get_default_registry",
    "get_pipeline_registry",
    "get_registry",
    "integrate_with_pipeline_builder",
    "list_contexts",
    "load_spec_file",
    "registry_manager",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'regman' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
