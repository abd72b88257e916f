"""scripts/get_pose_model.sh: valid bash, and a clear refusal naming what is missing (the
download itself needs npm and PyPI, so it is not run here)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / 'scripts' / 'get_pose_model.sh'


def test_the_script_is_valid_bash():
    assert subprocess.run(['bash', '-n', str(SCRIPT)], capture_output=True, timeout=30).returncode == 0


def test_it_refuses_naming_the_missing_tools(tmp_path):
    tools = tmp_path / 'bin'  # a machine with bash and python3 but no npm, tar or sha256sum
    tools.mkdir()
    for tool in ('bash', 'dirname', 'python3'):
        os.symlink(shutil.which(tool), tools / tool)
    run = subprocess.run([str(tools / 'bash'), str(SCRIPT), str(tmp_path / 'models')], capture_output=True,
                         text=True, timeout=30, env={'PATH': str(tools), 'HOME': str(tmp_path)})
    assert run.returncode == 2
    assert run.stderr.startswith('get_pose_model: missing npm tar sha256sum')  # (python3-venv where absent)
    assert 'install them' in run.stderr
    assert not (tmp_path / 'models').exists()
