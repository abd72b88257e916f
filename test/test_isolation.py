"""Concurrent local runs get different DDS domains."""

import subprocess
import sys

from kaiserslautern_vss.bringup.isolation import reserve_domain_id


def test_a_reserved_domain_is_not_handed_out_again(tmp_path):
    first = reserve_domain_id(tmp_path)
    others = {reserve_domain_id(tmp_path) for _ in range(20)}
    assert first not in others and len(others) == 20


def test_another_process_gets_another_domain(tmp_path):
    mine = reserve_domain_id(tmp_path)
    code = f'from kaiserslautern_vss.bringup.isolation import reserve_domain_id as r; ' \
           f'from pathlib import Path; print(r(Path({str(tmp_path)!r})))'
    theirs = {int(subprocess.check_output([sys.executable, '-c', code], text=True)) for _ in range(5)}
    assert mine not in theirs
