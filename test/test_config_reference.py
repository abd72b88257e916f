"""docs/CONFIGURATION.md is generated from the parameter catalogue and committed up to date."""

from pathlib import Path

from kaiserslautern_vss.parameters.catalogue import NODE_PARAMETERS
from kaiserslautern_vss.tools.config_reference import REFERENCE, render_reference

COMMITTED = Path(__file__).resolve().parents[1] / REFERENCE


def test_committed_reference_equals_the_generated_text():
    assert COMMITTED.read_text(encoding='utf-8') == render_reference(), (
        'docs/CONFIGURATION.md is out of date: run python -m kaiserslautern_vss.tools.config_reference --write')


def test_reference_lists_every_declared_parameter_with_its_range():
    text = render_reference()
    for executable, specs in NODE_PARAMETERS.items():
        assert f'## {executable}' in text
        for spec in specs:
            assert f'| {spec.name} | {spec.type_name} |' in text
            if spec.maximum is not None:
                assert f'.. {spec.maximum}' in text
