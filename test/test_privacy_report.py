"""vss-privacy-report: the documents state every camera, zone and retention setting of the config."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest
import yaml

from kaiserslautern_vss.bringup.graph import load_graph
from kaiserslautern_vss.tools.privacy_report import SiteConfigError, load_site, main
from site_support import require_model

CONFIG = Path(__file__).resolve().parents[1] / 'config'
SITE_FILES = ('site_rathausvorplatz.yaml', 'rules_rathausvorplatz.yaml', 'site_rathausvorplatz_privacy.yaml')


@pytest.fixture
def site_dir(tmp_path) -> Path:
    require_model('the report is of the site as shipped, which runs only with one')
    for name in SITE_FILES:
        shutil.copy(CONFIG / name, tmp_path / name)
    return tmp_path


def _report(site_dir: Path, output: Path) -> dict[str, str]:
    assert main(['--config', str(site_dir / SITE_FILES[0]), '--site', str(site_dir / SITE_FILES[2]),
                 '--output', str(output)]) == 0
    return {p.name: p.read_text(encoding='utf-8') for p in output.iterdir()}


def _edit(path: Path, edit) -> None:
    document = yaml.safe_load(path.read_text(encoding='utf-8'))
    edit(document)
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding='utf-8')


def test_every_camera_zone_rule_and_retention_setting_is_stated(site_dir, tmp_path):
    documents = _report(site_dir, tmp_path / 'out')
    assert sorted(documents) == sorted(f'{stem}.{ext}' for stem in ('verarbeitungsverzeichnis', 'dsfa',
                                                                    'hinweisschild') for ext in ('md', 'html'))
    record, dpia = documents['verarbeitungsverzeichnis.md'], documents['dsfa.md']
    specs = load_graph(site_dir / SITE_FILES[0])
    events = next(s.parameters for s in specs if s.executable == 'event_manager')
    for driver in (s for s in specs if s.executable == 'camera_driver'):
        camera = driver.parameters['camera_id']
        assert f'| {camera} |' in record and camera in dpia and camera in documents['verarbeitungsverzeichnis.html']
        for polygon in driver.parameters['privacy_zones']:
            assert polygon in record and html.escape(polygon) in documents['verarbeitungsverzeichnis.html']
    for rule in yaml.safe_load((site_dir / SITE_FILES[1]).read_text())['rules']:
        assert rule['name'] in record and rule['name'] in dpia
    for setting in ('retention_hours', 'quota_mb', 'min_free_mb', 'retention_check_s', 'record_root',
                    'pre_event_s', 'post_event_s', 'encryption', 'signing_key_file'):
        assert setting in record, setting
    assert f'{events["retention_hours"]:g} Stunden' in documents['hinweisschild.md']
    assert 'image_raw' not in dpia or 'nie' in dpia  # raw images are only ever named as never stored


def test_documents_follow_the_config(site_dir, tmp_path):
    before = _report(site_dir, tmp_path / 'before')
    _edit(site_dir / SITE_FILES[0], lambda d: (
        d['/vss/event_manager']['ros__parameters'].update(retention_hours=48.0),
        d['/vss/cam02/camera_driver']['ros__parameters'].update(
            privacy_zones=['10,10 200,10 200,90'], privacy_zones_width=1280, privacy_zones_height=720)))
    _edit(site_dir / SITE_FILES[2], lambda d: d['cameras']['cam02'].update(zones=['Balkon Haus Nr. 5']))
    after = _report(site_dir, tmp_path / 'after')
    assert '48 Stunden' in after['hinweisschild.md'] and '72 Stunden' in before['hinweisschild.md']
    assert '72 Stunden' not in after['verarbeitungsverzeichnis.md']
    assert 'Balkon Haus Nr. 5' in after['verarbeitungsverzeichnis.md']
    assert '10,10 200,10 200,90' in after['verarbeitungsverzeichnis.md']
    assert 'Balkon' not in before['verarbeitungsverzeichnis.md']


def test_typed_text_is_escaped_in_markdown_and_html(site_dir, tmp_path):
    _edit(site_dir / SITE_FILES[2], lambda d: d['cameras']['cam04'].update(view='<script>x</script> | Bänke'))
    documents = _report(site_dir, tmp_path / 'out')
    assert '<script>' not in documents['verarbeitungsverzeichnis.html']
    assert '&lt;script&gt;' in documents['verarbeitungsverzeichnis.html']
    row = next(line for line in documents['verarbeitungsverzeichnis.md'].splitlines() if line.startswith('| cam04 |'))
    assert len(re.split(r'(?<!\\)\|', row)) - 2 == 6  # still six columns: the typed '|' is escaped


def test_missing_site_facts_and_undescribed_cameras_are_refused(site_dir):
    _edit(site_dir / SITE_FILES[2], lambda d: d.pop('legal_basis'))
    with pytest.raises(SiteConfigError, match='missing legal_basis'):
        load_site(site_dir / SITE_FILES[0], site_dir / SITE_FILES[2])
    shutil.copy(CONFIG / SITE_FILES[2], site_dir / SITE_FILES[2])
    _edit(site_dir / SITE_FILES[2], lambda d: d['cameras'].pop('cam09'))
    with pytest.raises(SiteConfigError, match='cam09 have no location'):
        load_site(site_dir / SITE_FILES[0], site_dir / SITE_FILES[2])
    assert main(['--config', str(site_dir / SITE_FILES[0]), '--site', str(site_dir / SITE_FILES[2])]) == 2
