"""Typed parameter specifications, checked without ROS.

One catalogue (``catalogue.py``) says what every node declares; nodes declare from it,
the bringup validates config files against it, and the README's configuration
reference is generated from it, so the three cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class ParameterError(ValueError):
    """A parameter value or config entry that a node would reject at startup."""


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False  # a non-empty value must be configured

    @property
    def type_name(self) -> str:
        return _type_name(self.default)

    def validate(self, value: Any, where: str) -> Any:
        """The value, normalised (int accepted for float), or ParameterError naming ``where``."""
        expected = self.type_name
        if expected == 'double' and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if expected.endswith('[]') and isinstance(value, Sequence) and not isinstance(value, str):
            value = list(value)
            if expected == 'double[]':
                value = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                         for v in value]
            if value and _type_name(value) != expected:
                raise ParameterError(f'{where}: parameter {self.name!r} must be {expected}, got {value!r}')
        elif _type_name(value) != expected:
            raise ParameterError(
                f'{where}: parameter {self.name!r} must be {expected}, got {type(value).__name__} {value!r}')
        if self.required and value in ('', []):
            raise ParameterError(f'{where}: parameter {self.name!r} is required: {self.description}')
        if self.choices and value not in self.choices:
            raise ParameterError(
                f'{where}: parameter {self.name!r} is {value!r}; choose one of {", ".join(self.choices)}')
        if self.minimum is not None and value < self.minimum:
            raise ParameterError(f'{where}: parameter {self.name!r} = {value} is below {self.minimum}')
        if self.maximum is not None and value > self.maximum:
            raise ParameterError(f'{where}: parameter {self.name!r} = {value} is above {self.maximum}')
        return value


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return 'bool'
    if isinstance(value, int):
        return 'integer'
    if isinstance(value, float):
        return 'double'
    if isinstance(value, str):
        return 'string'
    if isinstance(value, (list, tuple)):
        if not value:
            return 'string[]'  # empty defaults in the catalogue are string arrays
        return _type_name(value[0]) + '[]'
    raise ParameterError(f'unsupported parameter type {type(value).__name__}')


def validate_parameters(specs: Sequence[ParamSpec], values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Every declared parameter resolved (config value or default); unknown names rejected."""
    by_name = {spec.name: spec for spec in specs}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise ParameterError(
            f'{where}: unknown parameter(s) {", ".join(unknown)}; known: {", ".join(sorted(by_name))}')
    return {spec.name: spec.validate(values.get(spec.name, spec.default), where) for spec in specs}
