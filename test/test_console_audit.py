"""Issue 22 against the real HTTPS console: audit first, then act; the police video made from
the verified bag; links refused in playback; case references kept apart; account state that
survives restarts; error pages that name no internals."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from console_support import BREAKS, PASSWORD, T0, Reply, break_audit_log, record_incident, running_console, totp_code
from kaiserslautern_vss.console.live import LiveState
from kaiserslautern_vss.console.playback import recording_from_bag
from kaiserslautern_vss.events.incident import Incident, IncidentUpdate
from kaiserslautern_vss.recordings.audit import AuditLog
from kaiserslautern_vss.recordings.export_video import write_video
from kaiserslautern_vss.recordings.integrity import public_key_path
from kaiserslautern_vss.tools import verify
from test_console_http import event_cdr, site  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow


def entries(settings) -> list[dict]:
    return AuditLog(settings.audit_log, settings.audit_key_file).entries()


def plain(reply: Reply, tmp_path: Path) -> Reply:
    """An error answer must say what to do, never a path or an errno text."""
    if reply.status >= 400:
        for internal in (str(tmp_path), '/tmp/', 'Errno', 'Traceback'):
            assert internal not in reply.text, (reply.status, reply.text[:500])
    return reply


def snapshot(settings, folder: Path) -> dict:
    """What an action must not change while the log is broken."""
    return {'incident': sorted((p.name, p.read_bytes()) for p in folder.iterdir()),
            'exports': sorted(str(p) for p in settings.export_root.rglob('*')) if settings.export_root.exists() else [],
            'users': settings.users_file.read_bytes()}


@pytest.mark.parametrize('how', BREAKS)
def test_nothing_changes_and_nothing_is_shown_while_the_audit_log_is_broken(site, tmp_path, how):  # noqa: F811
    settings, first, second = site
    triggered: list[str] = []
    live = LiveState(['cam01', 'cam02'], time.time)
    with running_console(settings, trigger=lambda camera: (triggered.append(camera) or True, 'ok'),
                         live=live) as running:
        ingo, anna = running.logged_in('ingo'), running.logged_in('anna')
        assert ingo.post(f'/incidents/{second.name}/evidence', {'action': 'mark', 'reason': 'Az. 1/26'}).status == 303
        assert ingo.get(f'/api/incidents/{first.name}/timeline').status == 200  # opened before the break
        for _ in range(3):
            running.client().login('olga', 'wrong password!', '000000')
        assert anna.get('/users').status == 200 and 'Sperre aufheben' in anna.get('/users').text
        incident = Incident(id='c3' * 16, rule='zone_intrusion', camera='cam01', kind='zone_intrusion',
                            started_ns=T0, updated_ns=T0)
        live.on_event(event_cdr(IncidentUpdate('start', incident)))
        before = snapshot(settings, first), snapshot(settings, second)
        break_audit_log(settings.audit_log, how)

        changes = [
            (ingo, f'/incidents/{first.name}/evidence', {'action': 'mark', 'reason': 'Az. 2/26'}),
            (ingo, f'/incidents/{second.name}/evidence', {'action': 'release', 'reason': 'erledigt'}),
            (ingo, f'/incidents/{first.name}/acknowledge', {'comment': 'gesehen'}),
            (ingo, f'/api/alerts/{incident.id}/acknowledge', {'comment': 'Streife informiert'}),
            (ingo, '/api/cameras/cam01/trigger', {'reason': 'Test'}),
            (ingo, f'/incidents/{first.name}/export', {'case_reference': 'Az. 3/26'}),
            (ingo, f'/incidents/{first.name}/export', {'case_reference': ''}),  # a refusal is audited too
            (anna, '/users/unlock', {'user': 'olga'}),
        ]
        for client, path, fields in changes:
            reply = plain(client.post(path, fields), tmp_path)
            assert reply.status == 503 and 'Zugriffsprotokoll' in reply.text, (path, reply.status, reply.text[:300])
        views = [(ingo, '/incidents'), (ingo, '/api/incidents'), (ingo, f'/incidents/{first.name}'),
                 (ingo, f'/api/incidents/{first.name}/timeline'), (ingo, f'/api/incidents/{first.name}/frames/0.jpg'),
                 (ingo, '/live'), (ingo, '/api/live/status'), (ingo, '/api/events'), (anna, '/users'),
                 (anna, '/audit')]
        for client, path in views:
            assert plain(client.get(path), tmp_path).status == 503, path
        refused_login = plain(running.client().login('ingo', PASSWORD, totp_code(running.accounts['ingo'])), tmp_path)
        assert refused_login.status == 503 and '__Host-vss_session' not in refused_login.headers.get('set-cookie', '')

        assert (snapshot(settings, first), snapshot(settings, second)) == before  # evidence.json, exports, users
        assert triggered == []  # no recording started
        assert live.acknowledgement('c3c3c3c3') is None and live.acknowledgement(first.name[-8:]) is None
        assert running.console.guard.is_locked('olga', time.time())


def test_every_view_and_refusal_is_audited_with_its_reason(site, tmp_path):  # noqa: F811
    settings, first, _ = site
    with running_console(settings) as running:
        olga, anna = running.logged_in('olga'), running.logged_in('anna')
        for path in ('/live', '/api/live/status', '/incidents', f'/incidents/{first.name}',
                     f'/api/incidents/{first.name}/timeline'):
            assert olga.get(path).status == 200, path
        assert anna.get('/users').status == 200
        ingo = running.logged_in('ingo')
        os.mkfifo(first / 'pipe')
        for reference in ('Az. 9/26', ' '):  # a FIFO in the incident; no case reference
            reply = ingo.post(f'/incidents/{first.name}/export', {'case_reference': reference})
            assert plain(reply, tmp_path).status == 400
        stranger = running.client()
        stranger.login('ingo', PASSWORD, '000000')  # right password, wrong code
        code = totp_code(running.accounts['olga'])
        assert running.client().login('olga', PASSWORD, code).status == 303
        assert running.client().login('olga', PASSWORD, code).status == 401  # the code again
        for _ in range(3):
            stranger.login('olga', 'wrong password!', '000000')
        assert plain(stranger.login('olga', PASSWORD, totp_code(running.accounts['olga'])), tmp_path).status == 429
    log = [(e['actor'], e['action'], e['target'], e['reason']) for e in entries(settings)]
    actions = {(actor, action) for actor, action, *_ in log}
    assert {('olga', 'view live'), ('olga', 'view incidents'), ('olga', 'view incident'),
            ('olga', 'view recording'), ('anna', 'view users')} <= actions
    assert [e[2] for e in log if e[:2] == ('olga', 'view incident')] == [first.name]
    refused = [e for e in log if e[1] == 'export refused']
    assert len(refused) == 2 and 'special file pipe' in refused[0][3] and 'Aktenzeichen fehlt' in refused[1][3]
    failed = [e[3] for e in log if e[1] == 'login failed']
    assert 'falscher TOTP-Code' in failed and 'TOTP-Code bereits verwendet' in failed
    assert any(e[:2] == ('olga', 'login refused') and 'gesperrt' in e[3] for e in log)
    assert AuditLog(settings.audit_log, settings.audit_key_file).verify() == []


def test_police_video_comes_from_the_verified_bag_after_swap_and_restore(site, tmp_path):  # noqa: F811
    """Swap the bag for a shortened one, play it (filling any cache), restore the original with
    the same mtime, export: the video holds all frames of the original and vss-verify agrees."""
    settings, first, _ = site
    bag = first / f'{first.name}.mcap'
    original, stat = bag.read_bytes(), bag.stat()
    short = record_incident(tmp_path / 'short', settings.signing_key_file, seconds=4.5, incident_id='a1' * 16)
    assert short.name == first.name
    with running_console(settings) as running:
        ingo = running.logged_in('ingo')
        full_frames = len(ingo.get(f'/api/incidents/{first.name}/timeline').json()['frames'])
        shutil.copyfile(short / bag.name, bag)
        swapped = ingo.get(f'/api/incidents/{first.name}/timeline').json()['frames']
        assert len(swapped) < full_frames  # playback shows what is on disk now
        refused = ingo.post(f'/incidents/{first.name}/export', {'case_reference': 'Az. 10/26'})
        assert refused.status == 400 and 'Export abgelehnt' in refused.text  # the swapped bag is not exported
        bag.write_bytes(original)
        os.utime(bag, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert len(ingo.get(f'/api/incidents/{first.name}/timeline').json()['frames']) == full_frames
        assert ingo.post(f'/incidents/{first.name}/export', {'case_reference': 'Az. 11/26'}).status == 200
    destination = settings.export_root / 'Az.%2011%2F26' / first.name
    description = json.loads((destination / 'export.json').read_text())
    signed = json.loads((first / 'manifest.json').read_text())['files'][bag.name]['sha256']
    assert description['bag']['sha256'] == description['bag']['signed_sha256'] == signed
    assert description['bag']['frames'] == description['video']['frames'] == full_frames == 51
    public = str(public_key_path(settings.signing_key_file))
    assert verify.main(['--key', public, '--export', str(destination)]) == 0
    # A video made from the shortened bag is caught, though every signed file is intact.
    frames = recording_from_bag(first.name, (short / bag.name).read_bytes(), False).frames
    write_video([f.jpeg for f in frames], [f.stamp_ns for f in frames], destination / f'{first.name}.avi')
    assert verify.main(['--key', public, '--export', str(destination)]) == 1


def test_playback_refuses_links_and_special_files(site, tmp_path):  # noqa: F811
    settings, first, second = site
    (first / '0.mcap').symlink_to(second / f'{second.name}.mcap')  # sorts before the real bag
    linked = settings.record_root / first.name.replace('a1a1a1a1', 'f0f0f0f0')
    linked.symlink_to(second, target_is_directory=True)
    with running_console(settings) as running:
        olga = running.logged_in('olga')
        reply = plain(olga.get(f'/api/incidents/{first.name}/timeline'), tmp_path)
        assert reply.status == 409 and 'unzulässig' in reply.json()['error']
        assert plain(olga.get(f'/api/incidents/{first.name}/frames/0.jpg'), tmp_path).status == 409
        for path in (f'/incidents/{linked.name}', f'/api/incidents/{linked.name}/timeline'):
            assert plain(olga.get(path), tmp_path).status == 404
        (first / '0.mcap').unlink()
        os.mkfifo(first / 'pipe')  # reading it would block
        assert olga.get(f'/api/incidents/{first.name}/timeline').status == 409
        (first / 'pipe').unlink()
        assert len(olga.get(f'/api/incidents/{first.name}/timeline').json()['frames']) == 51
    views = [e['target'] for e in entries(settings) if e['action'] == 'view recording']
    assert views == [first.name]  # logged once, under the incident actually shown


def test_case_references_are_kept_exactly_in_separate_folders(site, tmp_path):  # noqa: F811
    settings, first, _ = site
    references = ['ÄÖÜ', 'Fall', 'A/B', 'A_B', '..', '%41']
    with running_console(settings) as running:
        ingo = running.logged_in('ingo')
        links = []
        for reference in references:
            page = ingo.post(f'/incidents/{first.name}/export', {'case_reference': reference})
            assert page.status == 200, (reference, page.text[:300])
            links.append(re.search(r'id="archive" href="([^"]+)"', page.text).group(1))
        for link in links:
            assert ingo.get(link).status == 200, link
        for bad in ('Az.\x07 1', 'A\u200bB', 'x' * 81):
            assert plain(ingo.post(f'/incidents/{first.name}/export', {'case_reference': bad}), tmp_path).status == 400
        assert ingo.get(f'/exports/..%2F/{first.name}.zip').status == 404
    folders = sorted(settings.export_root.iterdir())
    assert len({p.name for p in folders if p.is_dir()}) == len(references)
    kept = {json.loads((p / first.name / 'export.json').read_text())['case_reference'] for p in folders if p.is_dir()}
    assert kept == set(references)
    assert all(p.resolve().parent == settings.export_root.resolve() for p in folders)


def test_lockouts_and_used_codes_survive_a_restart_and_strangers_cannot_lock_others_out(site, tmp_path):  # noqa: F811
    settings, _, _ = site
    with running_console(settings) as running:
        olga, anna = running.accounts['olga'], running.accounts['anna']
        code = totp_code(olga)
        assert running.client().login('olga', PASSWORD, code).status == 303
        stranger = running.client(source='127.0.0.2')  # another address
        for _ in range(3):
            stranger.login('olga', 'wrong password!', '000000')
            stranger.login('anna', 'wrong password!', '000000')
        assert stranger.login('olga', PASSWORD, totp_code(olga)).status == 429
        assert running.client().login('olga', PASSWORD, totp_code(olga)).status == 303  # olga, at her desk
        assert running.client().login('anna', PASSWORD, totp_code(anna)).status == 303
    state = settings.users_file.with_name('users.login-state.json')
    assert state.stat().st_mode & 0o777 == 0o600
    with running_console(settings, accounts=running.accounts) as running:  # restarted, same users
        assert running.client(source='127.0.0.2').login('olga', PASSWORD, totp_code(olga)).status == 429
        assert running.client().login('olga', PASSWORD, code).status == 401  # a used code stays used
