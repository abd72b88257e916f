"""The console's HTTP API against the real HTTPS server, with incidents made by the recorder."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import socket
import ssl
import threading
import time
import zipfile

import cv2
import pytest

from console_support import (PASSWORD, T0, SECOND, detections_cdr, event_cdr, jpeg_cdr, record_incident,
                             running_console, scene, console_settings, totp_code)
from kaiserslautern_vss.console.accounts import hash_password, load_accounts, save_accounts
from kaiserslautern_vss.console.live import LiveState
from kaiserslautern_vss.events.incident import Incident, IncidentUpdate
from kaiserslautern_vss.recordings.audit import AuditLog
from kaiserslautern_vss.recordings.encryption import load_or_create_key

pytestmark = pytest.mark.slow


@pytest.fixture
def site(tmp_path):
    """Two sealed incidents (cam01 zone_intrusion, cam02 loitering) and the settings serving them."""
    root = tmp_path / 'recordings'
    settings = console_settings(tmp_path, root, cameras=('cam01', 'cam02'))
    first = record_incident(root, settings.signing_key_file, camera='cam01', rule='zone_intrusion',
                            incident_id='a1' * 16)
    second = record_incident(root, settings.signing_key_file, camera='cam02', rule='loitering',
                             start_ns=T0 + 3600 * SECOND, incident_id='b2' * 16)
    return settings, first, second


def audit_entries(settings):
    return AuditLog(settings.audit_log, settings.audit_key_file).entries()


def test_security_headers_cookies_and_https_only(site):
    settings, _, _ = site
    with running_console(settings) as running:
        client = running.client()
        page = client.get('/login')
        csp = page.headers['content-security-policy']
        assert "script-src 'self'" in csp and 'unsafe-inline' not in csp and "frame-ancestors 'none'" in csp
        assert page.headers['strict-transport-security'].startswith('max-age=')
        assert page.headers['x-content-type-options'] == 'nosniff' and page.headers['cache-control'] == 'no-store'
        assert b'<script>' not in page.body and b' on' + b'click=' not in page.body
        cookie = page.headers['set-cookie']
        assert cookie.startswith('__Host-vss_login=') and 'Secure' in cookie and 'HttpOnly' in cookie \
            and 'SameSite=strict' in cookie
        response = client.login('olga', PASSWORD, totp_code(running.accounts['olga']))
        assert response.status == 303
        session_cookie = response.headers['set-cookie']
        assert '__Host-vss_session=' in session_cookie and 'Secure' in session_cookie and 'HttpOnly' in session_cookie
        assert running.server.address[0] == '127.0.0.1'
        with socket.create_connection(('127.0.0.1', running.server.port), timeout=5) as plain:
            plain.sendall(b'GET /login HTTP/1.1\r\nHost: x\r\n\r\n')
            assert not plain.recv(100).startswith(b'HTTP/1.1 200')  # no plain-HTTP service


def test_login_needs_password_totp_and_csrf_and_locks_out(site):
    settings, _, _ = site
    with running_console(settings) as running:
        olga = running.accounts['olga']
        client = running.client()
        client.get('/login')
        assert client.post('/login', {'user': 'olga', 'password': PASSWORD, 'totp': totp_code(olga)},
                           csrf=False).status == 403
        assert client.login('olga', PASSWORD, '000000').status == 401
        assert client.login('nobody', PASSWORD, '123456').status == 401
        assert client.login('olga', 'wrong password!', totp_code(olga)).status == 401
        assert client.login('olga', 'wrong password!', totp_code(olga)).status == 401
        # third failure in a row locked the account: even the right password is refused now
        assert client.login('olga', PASSWORD, totp_code(olga)).status == 429
        ingo = running.accounts['ingo']
        code = totp_code(ingo)
        assert running.client().login('ingo', PASSWORD, code).status == 303
        assert running.client().login('ingo', PASSWORD, code).status == 401  # a code works once
        assert running.client().get('/live').status == 303  # no session: to the login
        anna = running.logged_in('anna')
        assert anna.get('/users').status == 200
        users = load_accounts(settings.users_file)
        users['anna'] = dataclasses.replace(users['anna'], password_hash=hash_password('a new long passphrase'))
        save_accounts(settings.users_file, users)  # vss-users passwd
        assert anna.get('/users').status == 303  # the old session ended with the old password
        actions = [(e['actor'], e['action']) for e in audit_entries(settings)]
        assert actions.count(('olga', 'login failed')) == 3 and ('ingo', 'login') in actions


ROLE_MATRIX = [
    # (method, path, fields, {role: expected status})
    ('GET', '/live', None, {'olga': 200, 'ingo': 200, 'anna': 200}),
    ('GET', '/incidents', None, {'olga': 200, 'ingo': 200, 'anna': 200}),
    ('GET', '/api/incidents', None, {'olga': 200, 'ingo': 200, 'anna': 200}),
    ('POST', '/incidents/{first}/acknowledge', {'comment': 'gesehen'}, {'olga': 303, 'ingo': 303, 'anna': 303}),
    ('POST', '/api/cameras/cam01/trigger', {'reason': 'test'}, {'olga': 503, 'ingo': 503, 'anna': 503}),
    ('POST', '/incidents/{first}/evidence', {'action': 'mark', 'reason': 'Az. 1/26'},
     {'olga': 403, 'ingo': 303, 'anna': 303}),
    ('POST', '/incidents/{first}/verify', {}, {'olga': 403, 'ingo': 200, 'anna': 200}),
    ('POST', '/incidents/{first}/export', {'case_reference': 'Az 7'}, {'olga': 403, 'ingo': 200, 'anna': 400}),
    ('GET', '/audit', None, {'olga': 403, 'ingo': 403, 'anna': 200}),
    ('GET', '/users', None, {'olga': 403, 'ingo': 403, 'anna': 200}),
    ('POST', '/users/unlock', {'user': 'olga'}, {'olga': 403, 'ingo': 403, 'anna': 303}),
]


def test_role_matrix(site):
    """What each role may do (issue 15): 403 is a refusal; 503 trigger = no node here; anna's
    export 400 = ingo exported this case reference already."""
    settings, first, _ = site
    with running_console(settings) as running:
        clients = {user: running.logged_in(user) for user in ('olga', 'ingo', 'anna')}
        for method, path, fields, expected in ROLE_MATRIX:
            path = path.format(first=first.name)
            for user, status in expected.items():
                client = clients[user]
                reply = client.get(path) if method == 'GET' else client.post(path, fields)
                assert reply.status == status, (user, method, path, reply.status, reply.text[:300])
        refused = [e for e in audit_entries(settings) if e['action'] == 'refused']
        assert {e['actor'] for e in refused} == {'olga', 'ingo'} and len(refused) == 9
        assert 'Zugriff verweigert' in clients['olga'].get('/audit').text


def test_incident_list_filters(site):
    settings, first, second = site
    with running_console(settings) as running:
        ingo = running.logged_in('ingo')
        assert ingo.post(f'/incidents/{second.name}/evidence', {'action': 'mark', 'reason': 'Az. 2/26'}).status == 303

        def names(query=''):
            return [i['name'] for i in ingo.get('/api/incidents' + query).json()['incidents']]

        assert names() == [second.name, first.name]  # newest first
        assert names('?camera=cam01') == [first.name]
        assert names('?rule=loitering') == [second.name]
        assert names('?state=evidence') == [second.name]
        assert names('?state=closed') == [second.name, first.name] and names('?state=open') == []
        assert names('?since=2026-11-18T12:30') == [second.name]  # site time: 11:30 UTC
        page = ingo.get('/incidents?camera=cam02').text
        assert second.name in page and first.name not in page and 'Beweismittel' in page


def test_playback_is_audited_and_serves_frames_with_detections(site):
    settings, first, _ = site
    with running_console(settings) as running:
        olga = running.logged_in('olga')
        assert olga.get(f'/api/incidents/{first.name}/frames/0.jpg').status == 409  # not opened yet
        assert olga.get(f'/incidents/{first.name}').status == 200
        timeline = olga.get(f'/api/incidents/{first.name}/timeline').json()
        assert len(timeline['frames']) == 51 and timeline['trigger_s'] == 2.0
        assert timeline['frames'][0]['boxes'][0]['label'] == 'person'
        frame = olga.get(f'/api/incidents/{first.name}/frames/50.jpg')
        assert frame.status == 200 and frame.body[:2] == b'\xff\xd8' and frame.headers['cache-control'] == 'no-store'
        assert olga.get(f'/api/incidents/{first.name}/frames/51.jpg').status == 404
        assert olga.get('/incidents/..%2F..%2Fetc').status == 404
        views = [e for e in audit_entries(settings) if e['action'] == 'view recording']
        assert [(e['actor'], e['target']) for e in views] == [('olga', first.name)]


def test_encrypted_incident_plays_in_memory_only(tmp_path):
    root = tmp_path / 'recordings'
    key_file = tmp_path / 'keys' / 'recordings.key'
    key, _ = load_or_create_key(key_file)
    settings = console_settings(tmp_path, root, encryption_key_file=key_file)
    folder = record_incident(root, settings.signing_key_file, encryption_key=key)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob('*'))
    assert not list(folder.glob('*.mcap'))
    with running_console(settings) as running:
        olga = running.logged_in('olga')
        assert len(olga.get(f'/api/incidents/{folder.name}/timeline').json()['frames']) == 51
        assert olga.get(f'/api/incidents/{folder.name}/frames/3.jpg').body[:2] == b'\xff\xd8'
    written = set(p.relative_to(tmp_path) for p in tmp_path.rglob('*')) - set(before)
    assert all(p.parts[0] in ('keys', 'audit.log', 'audit.log.head') for p in written), written
    without_key = console_settings(tmp_path / 'other', root)
    with running_console(without_key) as running:
        reply = running.logged_in('olga').get(f'/api/incidents/{folder.name}/timeline')
        assert reply.status == 409 and 'verschlüsselt' in reply.json()['error']


def test_evidence_verify_and_export(site):
    settings, first, _ = site
    with running_console(settings) as running:
        ingo = running.logged_in('ingo')
        assert ingo.post(f'/incidents/{first.name}/evidence', {'action': 'mark', 'reason': ' '}).status == 400
        assert ingo.post(f'/incidents/{first.name}/evidence', {'action': 'mark', 'reason': 'Az. 5/26'}).status == 303
        mark = json.loads((first / 'evidence.json').read_text())
        assert mark['who'] == 'ingo' and mark['why'] == 'Az. 5/26'
        assert 'Signatur gültig' in ingo.post(f'/incidents/{first.name}/verify').text
        assert ingo.post(f'/incidents/{first.name}/export', {'case_reference': ''}).status == 400
        exported = ingo.post(f'/incidents/{first.name}/export', {'case_reference': 'Az. 5/26 StA KL'})
        assert exported.status == 200 and 'Exportiert nach' in exported.text
        destination = settings.export_root / 'Az._5_26_StA_KL' / first.name
        assert (destination / 'manifest.json').is_file() and list(destination.glob('*.mcap'))
        video = cv2.VideoCapture(str(destination / f'{first.name}.avi'))
        assert video.get(cv2.CAP_PROP_FPS) == 10.0 and video.get(cv2.CAP_PROP_FRAME_COUNT) == 51
        assert video.read()[1].shape == (360, 640, 3)
        download = ingo.get(f'/exports/Az._5_26_StA_KL/{first.name}.zip')
        assert download.status == 200 and download.headers['content-type'] == 'application/zip'
        with zipfile.ZipFile(io.BytesIO(download.body)) as archive:
            listed = json.loads(archive.read(f'{first.name}/export.json'))
            assert listed['case_reference'] == 'Az. 5/26 StA KL' and listed['exported_by'] == 'ingo'
            for name, digest in listed['files'].items():
                assert hashlib.sha256(archive.read(f'{first.name}/{name}')).hexdigest() == digest
            assert {'manifest.json', 'manifest.sig', f'{first.name}.avi'} <= set(listed['files'])
        assert ingo.get('/exports/..%2F..%2Fetc/passwd.zip').status == 404
        assert running.logged_in('olga').get(f'/exports/Az._5_26_StA_KL/{first.name}.zip').status == 403
        released = ingo.post(f'/incidents/{first.name}/evidence',
                             {'action': 'release', 'reason': 'Verfahren eingestellt'})
        assert released.status == 303
        assert not (first / 'evidence.json').exists()
        (first / 'metadata.yaml').write_text((first / 'metadata.yaml').read_text() + '# changed\n')
        tampered = ingo.post(f'/incidents/{first.name}/verify').text
        assert 'Vorfall verändert' in tampered and 'metadata.yaml' in tampered
        refused = ingo.post(f'/incidents/{first.name}/export', {'case_reference': 'Az. 6/26'})
        assert refused.status == 400 and 'Export abgelehnt' in refused.text
    actions = [(e['actor'], e['action'], e['target']) for e in audit_entries(settings)]
    for action in ('evidence mark', 'verify', 'export', 'evidence release'):
        assert ('ingo', action, first.name) in actions
    assert ('ingo', 'download export', f'Az._5_26_StA_KL/{first.name}') in actions
    assert AuditLog(settings.audit_log, settings.audit_key_file).verify() == []


def test_idle_sessions_end_but_live_polling_does_not_keep_them(site):
    settings, _, _ = site
    with running_console(settings.__class__(**{**settings.__dict__, 'idle_timeout_s': 3.0})) as running:
        olga = running.logged_in('olga')
        active = time.monotonic()  # the last user activity: the page logged_in fetched
        while time.monotonic() - active < 2.0:  # automatic refreshes are no user activity ...
            assert olga.get('/api/live/status').status == 200
            time.sleep(0.2)
        time.sleep(max(0.0, active + 3.5 - time.monotonic()))
        assert olga.get('/api/live/status').status == 401  # ... so they did not keep the session
        assert olga.get('/live').status == 303


def test_live_frames_alerts_within_a_second_and_acknowledge(site):
    settings, _, _ = site
    live = LiveState(['cam01', 'cam02'], time.time)
    with running_console(settings, live=live) as running:
        olga, ingo = running.logged_in('olga'), running.logged_in('ingo')
        assert olga.get('/api/live/cam01.jpg').status == 404  # nothing received yet
        image, boxes = scene(3)
        live.on_image('cam01', jpeg_cdr(T0, image))
        live.on_detections('cam01', detections_cdr(T0, boxes))
        frame = olga.get('/api/live/cam01.jpg')
        assert frame.status == 200 and frame.body[:2] == b'\xff\xd8' and frame.headers['x-frame-seq'] == '1'
        status = {c['camera']: c for c in olga.get('/api/live/status').json()['cameras']}
        assert status['cam01']['seq'] == 1 and status['cam02']['seq'] == 0
        drawn = olga.get('/api/live/cam01/detections').json()['boxes']
        assert [(b['label'], b['track_id']) for b in drawn] == [('person', 1), ('person', 2)]

        received, stream_open = [], threading.Event()

        def listen():
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            with socket.create_connection(('127.0.0.1', running.server.port)) as raw, \
                    context.wrap_socket(raw) as tls:
                cookie = '; '.join(f'{k}={v}' for k, v in olga.cookies.items())
                tls.sendall(f'GET /api/events HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n'.encode())
                buffer = b''
                while b'event: incident' not in buffer:
                    buffer += tls.recv(65536)
                    if b'retry:' in buffer:
                        stream_open.set()
                received.append((time.monotonic(), buffer))

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert stream_open.wait(10)
        incident = Incident(id='c3' * 16, rule='zone_intrusion', camera='cam01', kind='zone_intrusion',
                            started_ns=T0, updated_ns=T0)
        published = time.monotonic()
        live.on_event(event_cdr(IncidentUpdate('start', incident)))
        listener.join(10)
        assert received and received[0][0] - published < 1.0, 'alert took a second or more'
        assert b'"camera": "cam01"' in received[0][1]
        status = {c['camera']: c for c in olga.get('/api/live/status').json()['cameras']}
        assert status['cam01']['open_incidents'] == ['zone_intrusion']
        assert olga.post(f'/api/alerts/{incident.id}/acknowledge', {'comment': ''}).status == 400
        assert olga.post(f'/api/alerts/{incident.id}/acknowledge', {'comment': 'Streife informiert'}).status == 200
        alert = ingo.get('/api/alerts').json()['alerts'][0]
        assert alert['acknowledged']['who'] == 'olga' and alert['acknowledged']['comment'] == 'Streife informiert'
    # acknowledgements come back from the audit log after a restart
    with running_console(settings) as running:
        assert running.console.live.acknowledgement('c3c3c3c3')['comment'] == 'Streife informiert'
