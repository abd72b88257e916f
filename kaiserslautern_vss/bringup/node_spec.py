"""One node of the graph as the config describes it: executable, name, namespace, parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NodeSpec:
    executable: str
    name: str
    namespace: str
    parameters: dict[str, Any]

    @property
    def fqn(self) -> str:
        return f'{self.namespace.rstrip("/")}/{self.name}'
