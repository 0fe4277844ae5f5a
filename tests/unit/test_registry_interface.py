"""SageMakerRegistry offers every method of the Registry interface the controllers use."""

from __future__ import annotations

import inspect

import pytest

from model_registry_operator.registry import Registry, SageMakerRegistry

METHODS = [
    name for name, member in vars(Registry).items() if inspect.isfunction(member) and not name.startswith("_")
]


def test_interface_is_not_empty():
    assert {"describe_group", "find_package", "sync_tags"} <= set(METHODS)


@pytest.mark.parametrize("name", METHODS)
def test_implementation_accepts_the_interface_parameters(name):
    wanted = inspect.signature(getattr(Registry, name)).parameters
    offered = inspect.signature(getattr(SageMakerRegistry, name)).parameters
    assert list(wanted) == list(offered)[: len(wanted)], f"{name}: parameters differ"
