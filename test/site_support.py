"""The shipped site config (config/site_rathausvorplatz.yaml) in tests, with or without a model.

The site sets ``require_privacy_grade_model``, so on a machine without yolox_nano.onnx (no
../shared, nothing installed) load_graph refuses it; test_privacy_fallback checks that refusal.
Tests about anything else load the site through :func:`load_site`, which drops the requirement
only where no model is installed; tests that run the site's tools or detector skip through
:func:`require_model`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kaiserslautern_vss.bringup.graph import load_graph
from kaiserslautern_vss.bringup.node_spec import NodeSpec
from kaiserslautern_vss.paths import model_search_dirs, resolve_model_path

SITE_CONFIG = Path(__file__).resolve().parents[1] / 'config' / 'site_rathausvorplatz.yaml'
#: load_graph overrides for tests not about the detection model, on a machine without one
NO_MODEL_REQUIREMENT = {'/vss/detector': {'require_privacy_grade_model': False}}


def model_installed() -> bool:
    """True where an empty model_path finds yolox_nano.onnx (VSS_MODEL_DIR, ../shared, ~/.local)."""
    return bool(resolve_model_path(''))


def site_overrides() -> dict[str, dict[str, bool]]:
    """The site as shipped where a model is installed, else without the model requirement."""
    return {} if model_installed() else NO_MODEL_REQUIREMENT


def load_site(cameras: list[str] | None = None) -> list[NodeSpec]:
    """The site's validated nodes (see :func:`site_overrides`)."""
    return load_graph(SITE_CONFIG, cameras=cameras, overrides=site_overrides())


def require_model(why: str = 'the site config refuses to run without a privacy-grade model') -> None:
    """Skip unless a detection model is installed, saying ``why`` the test needs one."""
    if not model_installed():
        pytest.skip(f'no yolox_nano.onnx installed (looked in {", ".join(str(d) for d in model_search_dirs())}; '
                    f'put ../shared next to the checkout or set VSS_MODEL_DIR): {why}')
