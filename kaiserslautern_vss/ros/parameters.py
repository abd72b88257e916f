"""Declare a node's catalogue parameters with descriptors and read them validated."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from kaiserslautern_vss.parameters.spec import ParamSpec, validate_parameters


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    description = spec.description
    if spec.choices:
        description += f' (one of: {", ".join(spec.choices)})'
    descriptor = ParameterDescriptor(description=description, read_only=True)
    if spec.minimum is not None and spec.maximum is not None:
        if isinstance(spec.default, float):
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(spec.minimum), to_value=float(spec.maximum))]
        elif isinstance(spec.default, int) and not isinstance(spec.default, bool):
            descriptor.integer_range = [IntegerRange(
                from_value=int(spec.minimum), to_value=int(spec.maximum), step=1)]
    return descriptor


def _declare(node: Node, spec: ParamSpec) -> Any:
    if spec.default != []:
        node.declare_parameter(spec.name, spec.default, _descriptor(spec))
        return node.get_parameter(spec.name).value
    return _declare_string_list(node, spec)


def _declare_string_list(node: Node, spec: ParamSpec) -> list[str]:
    """A list parameter that reads as an empty string array when not configured.

    rclpy types an empty default as a byte array and would then reject a configured string
    list, so the type is declared alone (a configured list fills it), an unconfigured one is
    set to an empty string array, and only then is the parameter made read-only.
    """
    descriptor = _descriptor(spec)
    descriptor.type = Parameter.Type.STRING_ARRAY.value
    node.declare_parameter(spec.name, Parameter.Type.STRING_ARRAY,
                           ParameterDescriptor(description=descriptor.description))
    try:
        node.get_parameter(spec.name)
    except ParameterUninitializedException:
        node.set_parameters([Parameter(spec.name, Parameter.Type.STRING_ARRAY, [])])
    node.set_descriptor(spec.name, descriptor)
    return list(node.get_parameter(spec.name).value)


def declare_parameters(node: Node, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Declared, read and validated; raises ParameterError with the node's name."""
    values = {}
    for spec in specs:
        values[spec.name] = _declare(node, spec)
    return validate_parameters(specs, values, node.get_fully_qualified_name())
