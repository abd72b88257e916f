"""The package's import graph goes one way: every module imports only its own unit (a
sub-package or a top-level module) and units of lower layers, and no modules import each
other in a circle. A newcomer can then read the code bottom-up, and a lower layer can be
tested and reused without what sits above it.

Layers, lowest first (a unit may import units of lower layers only, not those beside it):

    paths, bounded_json, geometry, timekeeping,     foundations, no package imports
    bind_address, connection_slots, log_throttle
    camera                                          capture, and the image helpers detectors share
    detection                                       detections, detectors, tracking
    behaviour                                       poses and cues of people (detection.types)
    camera_events, privacy                          the cameras' own events; masking
    pipeline, parameters                            VisionPipeline; every node's parameter specs
    ros                                             ROS conversions, typestore, node entry, DDS env
    recordings                                      incident folders on disk (bags, seals, audit, export)
    events                                          rules, recorder, alerts, EventManager
    console                                         the operator console (web app)
    bringup                                         the graph from config: validation, processes
    nodes                                           the ROS nodes, thin adapters
    tools                                           command-line tools

Imports under ``if TYPE_CHECKING:`` do not run and are left out.
"""

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / 'kaiserslautern_vss'
LAYERS = [
    {'paths', 'bounded_json', 'geometry', 'timekeeping', 'bind_address', 'connection_slots', 'log_throttle'},
    {'camera'},
    {'detection'},
    {'behaviour'},
    {'camera_events', 'privacy'},
    {'pipeline', 'parameters'},
    {'ros'},
    {'recordings'},
    {'events'},
    {'console'},
    {'bringup'},
    {'nodes'},
    {'tools'},
]
LAYER_OF = {unit: index for index, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def unit_of(module: str) -> str:
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else parts[0]


def runtime_imports(tree: ast.AST) -> set[str]:
    """Package modules imported where the code runs (not under ``if TYPE_CHECKING:``)."""
    found: set[str] = set()
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ('TYPE_CHECKING', 'typing.TYPE_CHECKING'):
            found |= runtime_imports(ast.Module(body=node.orelse, type_ignores=[]))
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {node.module} | {f'{node.module}.{alias.name}' for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        found |= runtime_imports(node)
    return {name for name in found if name.split('.')[0] == 'kaiserslautern_vss'}


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (``from package import module`` counted as the module)."""
    modules = {module_name(path): path for path in PACKAGE.rglob('*.py')}
    return {module: {name for name in runtime_imports(ast.parse(path.read_text())) if name in modules} - {module}
            for module, path in modules.items()}


def test_every_unit_has_a_layer():
    units = {unit_of(module) for module in import_graph()} - {'kaiserslautern_vss'}
    assert units - LAYER_OF.keys() == set(), 'add the new unit to LAYERS (and the docstring)'


def test_imports_go_down_the_layers_only():
    upward = sorted(f'{module} imports {imported}' for module, imports in import_graph().items()
                    for imported in imports
                    if unit_of(module) != unit_of(imported) and unit_of(imported) != 'kaiserslautern_vss'
                    and LAYER_OF[unit_of(imported)] >= LAYER_OF[unit_of(module)])
    assert upward == []


def test_no_modules_import_each_other_in_a_circle():
    graph = import_graph()
    state: dict[str, int] = defaultdict(int)  # 0 unseen, 1 on the current path, 2 done
    circles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(graph[module]):
            if state[imported] == 1:
                circles.append(' -> '.join(path[path.index(imported):] + [imported]))
            elif state[imported] == 0:
                visit(imported, path + [imported])
        state[module] = 2

    for module in sorted(graph):
        if state[module] == 0:
            visit(module, [module])
    assert circles == []


def test_every_imported_package_module_exists():
    """A module moved without its importers updated fails here, not only when that code runs."""
    modules = {module_name(path) for path in PACKAGE.rglob('*.py')}
    missing = sorted(f'{module_name(path)} imports {node.module}' for path in PACKAGE.rglob('*.py')
                     for node in ast.walk(ast.parse(path.read_text()))
                     if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                     and node.module.split('.')[0] == 'kaiserslautern_vss' and node.module not in modules)
    assert missing == []
