"""The README names only code that exists, and its code layout names every package and
top-level module, so a newcomer's map of the code stays true as modules move."""

import importlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / 'README.md').read_text()
PACKAGE = REPO / 'kaiserslautern_vss'
#: ``kaiserslautern_vss/events/`` or ``kaiserslautern_vss/pipeline/vision.py`` (schema ids such as
#: ``kaiserslautern_vss/event/v1`` name no file and end in neither)
FILE_PATH = re.compile(r'(?<![\w/.~-])kaiserslautern_vss(?:/\w+)*(?:\.py|/)(?![\w/])')
DOTTED = re.compile(r'(?<![\w/.])kaiserslautern_vss(?:\.\w+)+')


def code_layout() -> str:
    section = README.split('## Code layout', 1)[1]
    return section.split('```', 2)[1]


def test_every_file_path_the_readme_names_exists():
    missing = sorted({path for path in FILE_PATH.findall(README) if not (REPO / path).exists()})
    assert missing == []


def test_every_module_the_readme_names_imports():
    def exists(name: str) -> bool:
        module, _, attribute = name.rpartition('.')
        try:
            importlib.import_module(name)
            return True
        except ModuleNotFoundError:
            return bool(module) and hasattr(importlib.import_module(module), attribute)

    assert sorted({name for name in DOTTED.findall(README) if not exists(name)}) == []


def test_the_code_layout_names_every_package_and_top_level_module():
    named = set(re.findall(r'(?m)(?:^\s+|\s)([a-z_]+(?:/|\.py))(?=\s)', code_layout()))
    present = {f'{path.name}/' for path in PACKAGE.iterdir() if (path / '__init__.py').exists()}
    present |= {path.name for path in PACKAGE.glob('*.py') if path.name != '__init__.py'}
    assert present - named == set(), 'add them to the code layout section of README.md'
    assert {name for name in named if not (PACKAGE / name).exists() and not (REPO / name).exists()} == set()
