"""The console web application (Starlette): pages, JSON/JPEG API, alert stream.

Security model: server-side sessions in a ``__Host-`` cookie (Secure, HttpOnly,
SameSite=Strict), a CSRF token per session on every POST, login with password (argon2)
and TOTP behind a rate limit and lockout, role checks on every route, strict security
headers (CSP without inline scripts, HSTS), ``Cache-Control: no-store`` so no frame of
a recording lands in a browser cache.

Audit first, then act: every change (acknowledgement, trigger, evidence mark and release,
export, unlock) and every view of incident data or the live view is written to the keyed
audit log (who, what, when, why) and made durable before it takes effect or is served;
refused logins and refused exports are logged with their reason. If the log cannot be
written, nothing changes and nothing is shown: the user gets a plain refusal, the
details go to the service log. Error pages say what the user can do, never a path.

Unauthenticated clients cost little: a POST body is read only when it is URL-encoded and
small (never spooled to disk, as multipart would be), after the CSRF token has something to
be compared with and, for the login, after the client's rate; login fields have length
limits, and what enters the audit log of a refused one is cut short. The live alert stream
lives no longer than its session, and a session has only a few of them.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kaiserslautern_vss.console import roles
from kaiserslautern_vss.console.accounts import (Account, AccountBook, credentials, hash_password, password_matches,
                                                 totp_counter)
from kaiserslautern_vss.console.casework import (CaseworkError, export_for_case, is_case_folder, set_evidence,
                                                 verify_signature)
from kaiserslautern_vss.console.incidents import (STATE_LABELS, STATES, IncidentFilter, IncidentNotFound,
                                                  incident_folder, list_incidents)
from kaiserslautern_vss.console.live import LiveState, short_id
from kaiserslautern_vss.console.login_guard import LoginGuard, state_path
from kaiserslautern_vss.console.playback import PlaybackError, RecordingCache
from kaiserslautern_vss.console.sessions import Session, SessionStore
from kaiserslautern_vss.console.settings import ConsoleSettings
from kaiserslautern_vss.recordings.audit import AuditError, AuditLog
from kaiserslautern_vss.recordings.export import ExportFailed, audit_refusal
from kaiserslautern_vss.recordings.file_modes import FileModeError, read_regular
from kaiserslautern_vss.recordings.integrity import EVIDENCE_FILE, IntegrityError, load_or_create_signing_key
from kaiserslautern_vss.recordings.retention import started_from_name
from kaiserslautern_vss.timekeeping import DEFAULT_TIMEZONE

_log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
#: times are shown in the site's time (the rules' default zone); the audit log keeps UTC
SITE_ZONE = ZoneInfo(DEFAULT_TIMEZONE)
SESSION_COOKIE = '__Host-vss_session'
LOGIN_COOKIE = '__Host-vss_login'  # CSRF token of the login form (there is no session yet)
SECURITY_HEADERS = [
    (b'content-security-policy', b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
                                 b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b'strict-transport-security', b'max-age=31536000'),
    (b'x-content-type-options', b'nosniff'),
    (b'x-frame-options', b'DENY'),
    (b'referrer-policy', b'no-referrer'),
    (b'cross-origin-opener-policy', b'same-origin'),
    (b'cross-origin-resource-policy', b'same-origin'),
    (b'permissions-policy', b'camera=(), microphone=(), geolocation=()'),
]
_NO_STORE = (b'cache-control', b'no-store')
FORM_TYPE = 'application/x-www-form-urlencoded'
#: POST bodies are read up to this size, and only then parsed
MAX_FORM_BYTES = 64 * 1024
MAX_LOGIN_FORM_BYTES = 4096
MAX_FORM_FIELDS = 32
#: longer login fields are refused before any check (vss-users allows user names of 1-64 characters)
LOGIN_FIELD_LIMITS = {'user': 64, 'password': 1024, 'totp': 16}
#: the alert stream checks its session this often (and before every alert)
STREAM_CHECK_S = 2.0
STREAM_KEEP_ALIVE_S = 15.0
CSRF_FAILED = 'CSRF-Prüfung fehlgeschlagen'


class SecurityHeaders:
    """Pure ASGI middleware (streams such as the alert stream pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] != 'http':
            await self.app(scope, receive, send)
            return
        static = scope['path'].startswith('/static/')

        async def send_with_headers(message: Message) -> None:
            if message['type'] == 'http.response.start':
                headers = [h for h in message.get('headers', []) if h[0].lower() != b'cache-control' or static]
                message['headers'] = headers + SECURITY_HEADERS + ([] if static else [_NO_STORE])
            await send(message)

        await self.app(scope, receive, send_with_headers)


class NotLoggedIn(Exception):
    """No valid session: pages redirect to the login, the API answers 401."""


@dataclass
class Forbidden(Exception):
    """The role may not do this: a refusal page (403), and an audit entry."""

    session: Session
    permission: str


@dataclass
class Console:
    """Everything the routes share; the node (or a test) builds one and serves :meth:`app`."""

    settings: ConsoleSettings
    live: LiveState
    trigger: Callable[[str], tuple[bool, str]] | None = None  # camera -> (success, message)
    clock: Callable[[], float] = time.time
    accounts: AccountBook = field(init=False)
    sessions: SessionStore = field(init=False)
    guard: LoginGuard = field(init=False)
    recordings: RecordingCache = field(init=False)

    def __post_init__(self) -> None:
        self.accounts = AccountBook(self.settings.users_file)
        self.sessions = SessionStore(self.settings.idle_timeout_s)
        self.guard = LoginGuard(self.settings.login_policy, state_path(self.settings.users_file))
        key_file = self.settings.encryption_key_file
        self.encryption_key = key_file.read_bytes() if key_file is not None else None
        self.recordings = RecordingCache(self.encryption_key)
        self.audit_log = AuditLog(self.settings.audit_log, self.settings.audit_key_file)
        self.audit_ok = True  # False from a failed entry until the next one succeeds (polls check it)
        self._signing_key: Ed25519PrivateKey | None = None
        self._nobody = Account('-', roles.OPERATOR, hash_password(secrets.token_urlsafe(24)), '')
        self.templates = Jinja2Templates(directory=str(HERE / 'templates'))
        self.templates.env.globals.update(role_labels=roles.ROLE_LABELS, state_labels=STATE_LABELS)
        self.templates.env.filters['ortszeit'] = lambda moment: moment.astimezone(SITE_ZONE).strftime(
            '%d.%m.%Y %H:%M:%S')
        self._streams: dict[str, set[asyncio.Queue]] = {}  # session id -> its alert streams' queues
        self._restore_acknowledgements()

    # --- helpers ---------------------------------------------------------------------
    @property
    def signing_key(self) -> Ed25519PrivateKey | None:
        """The recordings' key (verifying incidents, signing evidence marks), read once it
        exists (the event manager creates it on its first start); never created here."""
        if self._signing_key is None and self.settings.signing_key_file.is_file():
            self._signing_key = load_or_create_signing_key(self.settings.signing_key_file)[0]
        return self._signing_key

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=timezone.utc)

    def audit(self, who: str, what: str, target: str, why: str) -> None:
        """Write and sync one entry; AuditError (the caller must not act) if it cannot be."""
        self.audit_log.record(who, what, target, why, when=self.now())
        self.audit_ok = True

    def require_audit_log(self) -> None:
        """For the frequent requests that are not logged one by one (live polling, frames):
        refused while the last entry could not be written."""
        if not self.audit_ok:
            raise AuditError('the last audit entry could not be written')

    def _restore_acknowledgements(self) -> None:
        """Acknowledgements live in the audit log; rebuild the list from it at start."""
        for entry in self.audit_log.entries():
            if entry.get('action') == 'acknowledge':
                self.live.set_acknowledged(short_id(entry['target']), {
                    'who': entry['actor'], 'comment': entry['reason'], 'when': entry['when']})

    def session(self, request: Request, permission: str, activity: bool = True) -> Session:
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE), self.clock(), activity)
        if session is None:
            raise NotLoggedIn()
        account = self.accounts.get(session.user)
        if account is None or credentials(account) != session.credentials:  # removed or changed by vss-users
            self.sessions.end(session.id)
            raise NotLoggedIn()
        if not roles.allowed(session.role, permission):
            raise Forbidden(session, permission)
        return session

    async def form(self, request: Request, session: Session | None, limit: int = MAX_FORM_BYTES) -> FormData:
        """The POSTed form, after checking its CSRF token (session's, or the login cookie's).

        Without a token to compare with, or with a wrong ``X-CSRF-Token`` header, the body is
        not read at all; else at most ``limit`` bytes of a URL-encoded body are.
        """
        expected = session.csrf_token if session is not None else request.cookies.get(LOGIN_COOKIE, '')
        header = request.headers.get('x-csrf-token')
        if not expected or (header is not None and not hmac.compare_digest(header, expected)):
            raise HTTPException(403, CSRF_FAILED)
        body = await _form_body(request, limit)
        try:
            form = FormData(parse_qsl(body.decode('utf-8'), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))
        except ValueError as error:  # not UTF-8, too many fields
            raise HTTPException(400, 'Formulardaten nicht lesbar') from error
        if header is None and not hmac.compare_digest(str(form.get('csrf_token', '')), expected):
            raise HTTPException(403, CSRF_FAILED)
        return form

    def page(self, request: Request, template: str, session: Session | None, status: int = 200,
             **context: Any) -> Response:
        can = (lambda permission: roles.allowed(session.role, permission)) if session else (lambda _: False)
        return self.templates.TemplateResponse(request, template, {
            'session': session, 'can': can, 'roles': roles, **context}, status_code=status)

    def folder(self, name: str) -> Path:
        try:
            return incident_folder(self.settings.record_root, name)
        except IncidentNotFound as error:
            raise HTTPException(404, 'Vorfall nicht gefunden') from error

    # --- login -----------------------------------------------------------------------
    async def login_page(self, request: Request) -> Response:
        return self._login_form(request, '')

    def _login_form(self, request: Request, error: str, status: int = 200) -> Response:
        token = secrets.token_urlsafe(32)
        response = self.page(request, 'login.html', None, status, login_token=token, error=error)
        response.set_cookie(LOGIN_COOKIE, token, secure=True, httponly=True, samesite='strict', path='/')
        return response

    async def login(self, request: Request) -> Response:
        client = request.client.host if request.client else '?'
        now = self.clock()
        refusal = self.guard.address_refusal(client, now)  # before the body is read, so before any name
        if refusal:
            if refusal.audited:
                await run_in_threadpool(self.audit, '-', 'login refused', client, refusal.reason)
            return self._login_form(request, refusal.message, 429)
        form = await self.form(request, None, MAX_LOGIN_FORM_BYTES)
        fields = {name: str(form.get(name, '')) for name in LOGIN_FIELD_LIMITS}
        user, password, code = fields.values()
        too_long = [name for name, limit in LOGIN_FIELD_LIMITS.items() if len(fields[name]) > limit]
        if too_long:
            await run_in_threadpool(self.audit, _cut(user, LOGIN_FIELD_LIMITS['user']) or '-', 'login failed', client,
                                    f'abgewiesen: zu lang ({", ".join(too_long)})')
            return self._login_form(request, 'Anmeldung fehlgeschlagen: Eingabe zu lang.', 400)
        account = self.accounts.get(user)
        refusal = self.guard.account_refusal(user, client, now,
                                             admin=account is not None and account.role == roles.ADMIN)
        if refusal:
            await run_in_threadpool(self.audit, user or '-', 'login refused', client, refusal.reason)
            return self._login_form(request, refusal.message, 429)
        # unknown names cost the same argon2 check, so timing does not reveal which names exist
        password_ok = await run_in_threadpool(password_matches, account or self._nobody, password)
        step = totp_counter(account, code, now) if account and password_ok else None
        failure = ('unbekannter Benutzer' if account is None else 'falsches Passwort' if not password_ok
                   else 'falscher TOTP-Code' if step is None
                   else '' if self.guard.accept_totp_step(user, step) else 'TOTP-Code bereits verwendet')
        if account is None or failure:
            locked = self.guard.record_failure(user, client, now)
            await run_in_threadpool(self.audit, user or '-', 'login failed', client,
                                    failure + ('; jetzt gesperrt' if locked else ''))
            return self._login_form(request, 'Anmeldung fehlgeschlagen: Benutzer, Passwort oder Code falsch.', 401)
        await run_in_threadpool(self.audit, account.name, 'login', client, f'Anmeldung als {account.role}')
        self.guard.record_success(user, client)
        session = self.sessions.create(account.name, account.role, credentials(account), now)
        response = RedirectResponse('/live' if roles.allowed(account.role, roles.VIEW_LIVE) else '/incidents', 303)
        response.set_cookie(SESSION_COOKIE, session.id, secure=True, httponly=True, samesite='strict', path='/')
        response.delete_cookie(LOGIN_COOKIE, secure=True, httponly=True, samesite='strict', path='/')
        return response

    async def logout(self, request: Request) -> Response:
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE), self.clock())
        if session is not None:
            await self.form(request, session)
            self.sessions.end(session.id)
            _wake(self._streams.pop(session.id, ()))  # they find the session gone and end
            await run_in_threadpool(self.audit, session.user, 'logout', '-', 'Abmeldung')
        response = RedirectResponse('/login', 303)
        response.delete_cookie(SESSION_COOKIE, secure=True, httponly=True, samesite='strict', path='/')
        return response

    # --- live view -------------------------------------------------------------------
    async def _audit_live(self, session: Session, what: str) -> None:
        await run_in_threadpool(self.audit, session.user, 'view live', what, 'Live-Ansicht in der Leitstelle')
        session.live_audited = True

    async def _live_access(self, session: Session, what: str) -> None:
        """The first live access of a session is audited; later polls are refused while the log fails."""
        if session.live_audited:
            self.require_audit_log()
        else:
            await self._audit_live(session, what)

    async def live_page(self, request: Request) -> Response:
        session = self.session(request, roles.VIEW_LIVE)
        await self._audit_live(session, 'live page')
        return self.page(request, 'live.html', session, cameras=self.settings.cameras,
                         refresh_ms=int(1000 / self.settings.live_refresh_hz))

    async def live_status(self, request: Request) -> Response:
        await self._live_access(self.session(request, roles.VIEW_LIVE, activity=False), 'status')
        return JSONResponse({'cameras': self.live.cameras_status()})

    async def live_frame(self, request: Request) -> Response:
        await self._live_access(self.session(request, roles.VIEW_LIVE, activity=False), 'frames')
        frame = self.live.frame(request.path_params['camera'])
        if frame is None:
            return Response(status_code=404)
        return Response(frame[1], media_type='image/jpeg', headers={'x-frame-seq': str(frame[0])})

    async def live_detections(self, request: Request) -> Response:
        await self._live_access(self.session(request, roles.VIEW_LIVE, activity=False), 'detections')
        camera = request.path_params['camera']
        return JSONResponse({'boxes': self.live.detections(camera), **self.live.behaviour(camera)})

    async def alerts(self, request: Request) -> Response:
        await self._live_access(self.session(request, roles.VIEW_LIVE, activity=False), 'alerts')
        return JSONResponse({'alerts': self.live.alerts()})

    async def event_stream(self, request: Request) -> Response:
        """Server-sent events: ``incident`` and ``ack`` as they happen, a comment every 15 s.

        The stream ends with its session (logout at once; idle or absolute timeout, changed
        role, password or TOTP secret within :data:`STREAM_CHECK_S`, and before any alert);
        a session holds at most ``max_streams_per_session`` of them.
        """
        session = self.session(request, roles.VIEW_LIVE, activity=False)
        streams = self._streams.setdefault(session.id, set())
        if len(streams) >= self.settings.max_streams_per_session:
            return JSONResponse({'error': 'zu viele Alarm-Streams dieser Anmeldung'}, 429)
        await self._audit_live(session, 'event stream')
        queue = self.live.subscribe()
        streams.add(queue)

        async def stream():
            try:
                yield 'retry: 2000\n\n'
                quiet_s = 0.0
                while True:
                    try:
                        item = await asyncio.wait_for(queue.get(), timeout=STREAM_CHECK_S)
                    except asyncio.TimeoutError:
                        item = None
                    if not self._stream_allowed(request):
                        return
                    if item is None:
                        quiet_s += STREAM_CHECK_S
                        if quiet_s >= STREAM_KEEP_ALIVE_S:
                            quiet_s = 0.0
                            yield ': keep-alive\n\n'
                    elif item != _WAKE:
                        yield f'event: {item[0]}\ndata: {json.dumps(item[1])}\n\n'
            finally:
                self.live.unsubscribe(queue)
                streams.discard(queue)
                if not streams and self._streams.get(session.id) is streams:
                    del self._streams[session.id]

        return StreamingResponse(stream(), media_type='text/event-stream', headers={'x-accel-buffering': 'no'})

    def _stream_allowed(self, request: Request) -> bool:
        try:
            self.session(request, roles.VIEW_LIVE, activity=False)
        except (NotLoggedIn, Forbidden):
            return False
        return True

    async def acknowledge(self, request: Request) -> Response:
        session = self.session(request, roles.ACKNOWLEDGE)
        form = await self.form(request, session)
        comment = str(form.get('comment', '')).strip()
        if not comment:
            return JSONResponse({'error': 'Kommentar fehlt (Pflichtangabe für das Protokoll)'}, 400)
        reference = request.path_params['incident']
        event = self.live.incident(reference)
        target = Path(event['bag_path']).name if event and event.get('bag_path') else reference
        return JSONResponse({'acknowledged': await self._acknowledge(session, target, short_id(reference), comment)})

    async def _acknowledge(self, session: Session, target: str, key: str, comment: str) -> dict[str, str]:
        """Audit the acknowledgement of ``target`` (incident folder or id), then record it under ``key``
        (:func:`short_id`) and tell every browser."""
        await run_in_threadpool(self.audit, session.user, 'acknowledge', target, comment)
        acknowledgement = {'who': session.user, 'comment': comment, 'when': self.now().isoformat()}
        self.live.set_acknowledged(key, acknowledgement)
        return acknowledgement

    async def trigger_recording(self, request: Request) -> Response:
        session = self.session(request, roles.TRIGGER)
        form = await self.form(request, session)
        camera = request.path_params['camera']
        reason = str(form.get('reason', '')).strip() or 'manuelle Auslösung in der Leitstelle'
        if camera not in self.settings.cameras:
            return JSONResponse({'error': f'unbekannte Kamera {camera}'}, 404)
        if self.trigger is None:
            return JSONResponse({'error': 'Auslösen ist nur mit laufendem Knoten möglich'}, 503)
        await run_in_threadpool(self.audit, session.user, 'trigger', camera, reason)
        success, message = await run_in_threadpool(self.trigger, camera)
        if not success:
            try:
                await run_in_threadpool(self.audit, session.user, 'trigger failed', camera, message or '-')
            except AuditError as error:  # nothing was started; the refusal stands either way
                _log.error('audit entry for a failed trigger not written: %s', error)
        return JSONResponse({'success': success, 'message': message}, 200 if success else 502)

    # --- incidents -------------------------------------------------------------------
    def _incident_list(self, request: Request) -> tuple[list, IncidentFilter]:
        params = request.query_params
        incident_filter = IncidentFilter(
            camera=params.get('camera', ''), rule=params.get('rule', ''),
            since=_parse_time(params.get('since', '')), until=_parse_time(params.get('until', '')),
            state=params.get('state', '') if params.get('state', '') in STATES else '')
        incidents = list_incidents(self.settings.record_root, self.settings.cameras, self.live.open_bag_names(),
                                   self.live.acknowledged_keys())
        return [i for i in incidents if incident_filter.matches(i)], incident_filter

    async def incidents_page(self, request: Request) -> Response:
        session = self.session(request, roles.VIEW_INCIDENTS)
        await run_in_threadpool(self.audit, session.user, 'view incidents', _query(request), 'Vorfallliste')
        incidents, incident_filter = await run_in_threadpool(self._incident_list, request)
        rules = sorted({i.rule for i in incidents})
        return self.page(request, 'incidents.html', session, incidents=incidents, filter=incident_filter,
                         cameras=self.settings.cameras, rules=rules, states=STATES)

    async def incidents_api(self, request: Request) -> Response:
        session = self.session(request, roles.VIEW_INCIDENTS)
        await run_in_threadpool(self.audit, session.user, 'view incidents', _query(request), 'Vorfallliste (API)')
        incidents, _ = await run_in_threadpool(self._incident_list, request)
        return JSONResponse({'incidents': [{
            'name': i.name, 'camera': i.camera, 'rule': i.rule, 'started': i.started.isoformat(),
            'size_bytes': i.size_bytes, 'states': sorted(i.states), 'encrypted': i.encrypted} for i in incidents]})

    async def incident_page(self, request: Request) -> Response:
        session = self.session(request, roles.VIEW_INCIDENTS)
        folder = self.folder(request.path_params['name'])
        await run_in_threadpool(self.audit, session.user, 'view incident', folder.name, 'Vorfallseite')
        return await self._incident_view(request, session, folder)

    async def _incident_view(self, request: Request, session: Session, folder: Path, status: int = 200,
                             **context: Any) -> Response:
        summary = next((i for i in (await run_in_threadpool(self._incident_list, request))[0]
                        if i.name == folder.name), None)
        evidence = await run_in_threadpool(_evidence_mark, folder)
        return self.page(request, 'incident.html', session, status, incident=summary, name=folder.name,
                         evidence=evidence, acknowledgement=self.live.acknowledgement(short_id(folder.name)),
                         **context)

    async def timeline(self, request: Request) -> Response:
        session = self.session(request, roles.VIEW_INCIDENTS)
        folder = self.folder(request.path_params['name'])
        try:
            digest, recording = await run_in_threadpool(self.recordings.open, folder)
        except PlaybackError as error:
            _log.warning('playback of %s refused: %s (%s)', folder.name, error, error.__cause__)
            return JSONResponse({'error': str(error)}, 409)
        # logged under the folder the bag was read from (links are refused, so it is this incident)
        await run_in_threadpool(self.audit, session.user, 'view recording', folder.name,
                                f'Wiedergabe in der Leitstelle (Aufzeichnung SHA-256 {digest[:16]})')
        session.opened_recordings[folder.name] = digest
        return JSONResponse(recording.timeline())

    async def recording_frame(self, request: Request) -> Response:
        session = self.session(request, roles.VIEW_INCIDENTS, activity=False)
        folder = self.folder(request.path_params['name'])
        self.require_audit_log()
        # frames only from the recording this session opened (and was audited for)
        recording = self.recordings.get(session.opened_recordings.get(folder.name, ''))
        if recording is None:
            return Response('Aufzeichnung (erneut) öffnen', 409)
        index = request.path_params['index']
        if not 0 <= index < len(recording.frames):
            return Response(status_code=404)
        return Response(recording.frames[index].jpeg, media_type='image/jpeg')

    async def acknowledge_incident(self, request: Request) -> Response:
        session = self.session(request, roles.ACKNOWLEDGE)
        folder = self.folder(request.path_params['name'])
        form = await self.form(request, session)
        comment = str(form.get('comment', '')).strip()
        if not comment:
            return await self._incident_view(request, session, folder, 400,
                                             error='Kommentar fehlt (Pflichtangabe für das Protokoll)')
        await self._acknowledge(session, folder.name, short_id(folder.name), comment)
        return RedirectResponse(f'/incidents/{folder.name}', 303)

    async def evidence(self, request: Request) -> Response:
        session = self.session(request, roles.EVIDENCE)
        folder = self.folder(request.path_params['name'])
        form = await self.form(request, session)
        try:
            await run_in_threadpool(lambda: set_evidence(
                folder, form.get('action') == 'mark', who=session.user, why=str(form.get('reason', '')),
                when=self.now(), audit=self.audit_log, signing_key=self.signing_key))
        except CaseworkError as error:
            return await self._incident_view(request, session, folder, 400, error=str(error))
        except (IntegrityError, OSError) as error:
            _log.error('evidence change of %s failed: %s', folder.name, error)
            return await self._incident_view(request, session, folder, 500, error=_FAILED)
        return RedirectResponse(f'/incidents/{folder.name}', 303)

    async def verify(self, request: Request) -> Response:
        session = self.session(request, roles.EVIDENCE)
        folder = self.folder(request.path_params['name'])
        await self.form(request, session)
        if self.signing_key is None:
            return await self._incident_view(request, session, folder, 503, error=_NO_KEY)
        findings = await run_in_threadpool(lambda: verify_signature(
            folder, self.signing_key, who=session.user, when=self.now(), audit=self.audit_log))
        return await self._incident_view(request, session, folder, verification=findings)

    async def export(self, request: Request) -> Response:
        session = self.session(request, roles.EXPORT)
        folder = self.folder(request.path_params['name'])
        form = await self.form(request, session)
        case_reference = str(form.get('case_reference', ''))
        try:
            if self.signing_key is None:
                raise CaseworkError(_NO_KEY)
            exported = await run_in_threadpool(lambda: export_for_case(
                folder, case_reference_text=case_reference, who=session.user, when=self.now(),
                export_root=self.settings.export_root, signing_key=self.signing_key,
                encryption_key=self.encryption_key, audit=self.audit_log))
        except CaseworkError as refusal:
            await run_in_threadpool(audit_refusal, self.audit_log, session.user, folder, case_reference or '-', refusal)
            return await self._incident_view(request, session, folder, 400, error=str(refusal))
        except (ExportFailed, OSError) as error:
            _log.error('export of %s failed: %s', folder.name, error)
            return await self._incident_view(request, session, folder, 500, error=_FAILED)
        return await self._incident_view(request, session, folder, exported=exported)

    async def export_download(self, request: Request) -> Response:
        """The archive of an export, for the investigator handing it to the police (audited)."""
        session = self.session(request, roles.EXPORT)
        case, name = request.path_params['case'], request.path_params['name']
        archive = self.settings.export_root / case / f'{name}.zip'
        if not is_case_folder(case) or started_from_name(name) is None or not archive.is_file():
            raise HTTPException(404, 'Export nicht gefunden')
        await run_in_threadpool(self.audit, session.user, 'download export', f'{case}/{name}',
                                'Archiv zur Übergabe heruntergeladen')
        return FileResponse(archive, media_type='application/zip', filename=archive.name)

    # --- administration --------------------------------------------------------------
    async def audit_page(self, request: Request) -> Response:
        session = self.session(request, roles.READ_AUDIT)
        await run_in_threadpool(self.audit, session.user, 'view audit log', self.audit_log.path.name,
                                'Einsicht Protokoll')
        entries, problems = await run_in_threadpool(lambda: (self.audit_log.entries(), self.audit_log.verify()))
        entries = entries[::-1][:1000]  # newest first
        return self.page(request, 'audit.html', session, entries=entries, problems=problems)

    async def users_page(self, request: Request) -> Response:
        session = self.session(request, roles.MANAGE_USERS)
        await run_in_threadpool(self.audit, session.user, 'view users', self.settings.users_file.name, 'Benutzerliste')
        now = self.clock()
        users = [(account, self.guard.is_locked(account.name, now)) for account in self.accounts.all().values()]
        return self.page(request, 'users.html', session, users=users, users_file=self.settings.users_file)

    async def unlock_user(self, request: Request) -> Response:
        session = self.session(request, roles.MANAGE_USERS)
        form = await self.form(request, session)
        name = str(form.get('user', ''))
        await run_in_threadpool(self.audit, session.user, 'unlock user', name, 'Sperre aufgehoben')
        self.guard.unlock(name)
        return RedirectResponse('/users', 303)

    async def home(self, request: Request) -> Response:
        return RedirectResponse('/live', 303)

    # --- errors ----------------------------------------------------------------------
    async def on_audit_error(self, request: Request, error: Exception) -> Response:
        """No access that cannot be audited (fail closed); what is wrong goes to the service log."""
        self.audit_ok = False
        _log.error('audit log not writable, %s %s refused: %s', request.method, request.url.path, error)
        message = _AUDIT_REFUSAL
        if request.url.path.startswith('/api/'):
            return JSONResponse({'error': message}, 503)
        return self.page(request, 'error.html', None, 503, message=message)

    async def on_not_logged_in(self, request: Request, _: Exception) -> Response:
        if request.url.path.startswith('/api/'):
            return JSONResponse({'error': 'nicht angemeldet'}, 401)
        return RedirectResponse('/login', 303)

    async def on_forbidden(self, request: Request, refusal: Exception) -> Response:
        assert isinstance(refusal, Forbidden)
        try:
            await run_in_threadpool(self.audit, refusal.session.user, 'refused', request.url.path,
                                    f'Rolle {refusal.session.role} ohne Recht {refusal.permission}')
        except AuditError as error:  # refused either way
            _log.error('audit entry for a refused request not written: %s', error)
        if request.url.path.startswith('/api/'):
            return JSONResponse({'error': 'Zugriff verweigert'}, 403)
        return self.page(request, 'refused.html', refusal.session, 403)

    async def on_http_error(self, request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        if request.url.path.startswith('/api/'):
            return JSONResponse({'error': error.detail}, error.status_code)
        return self.page(request, 'error.html', None, error.status_code, message=error.detail)

    async def on_server_error(self, request: Request, error: Exception) -> Response:
        _log.exception('%s %s failed', request.method, request.url.path, exc_info=error)
        if request.url.path.startswith('/api/'):
            return JSONResponse({'error': _FAILED}, 500)
        return self.page(request, 'error.html', None, 500, message=_FAILED)

    def app(self) -> Starlette:
        routes = [
            Route('/', self.home),
            Route('/favicon.ico', lambda _: Response(status_code=204)),  # none; keeps browser logs clean
            Route('/login', self.login_page, methods=['GET']),
            Route('/login', self.login, methods=['POST']),
            Route('/logout', self.logout, methods=['POST']),
            Route('/live', self.live_page),
            Route('/incidents', self.incidents_page),
            Route('/incidents/{name}', self.incident_page),
            Route('/incidents/{name}/acknowledge', self.acknowledge_incident, methods=['POST']),
            Route('/incidents/{name}/evidence', self.evidence, methods=['POST']),
            Route('/incidents/{name}/verify', self.verify, methods=['POST']),
            Route('/incidents/{name}/export', self.export, methods=['POST']),
            Route('/exports/{case}/{name}.zip', self.export_download),
            Route('/audit', self.audit_page),
            Route('/users', self.users_page),
            Route('/users/unlock', self.unlock_user, methods=['POST']),
            Route('/api/live/status', self.live_status),
            Route('/api/live/{camera}.jpg', self.live_frame),
            Route('/api/live/{camera}/detections', self.live_detections),
            Route('/api/alerts', self.alerts),
            Route('/api/alerts/{incident}/acknowledge', self.acknowledge, methods=['POST']),
            Route('/api/events', self.event_stream),
            Route('/api/cameras/{camera}/trigger', self.trigger_recording, methods=['POST']),
            Route('/api/incidents', self.incidents_api),
            Route('/api/incidents/{name}/timeline', self.timeline),
            Route('/api/incidents/{name}/frames/{index:int}.jpg', self.recording_frame),
            Mount('/static', StaticFiles(directory=str(HERE / 'static')), name='static'),
        ]
        app = Starlette(routes=routes, exception_handlers={
            NotLoggedIn: self.on_not_logged_in, Forbidden: self.on_forbidden, HTTPException: self.on_http_error,
            AuditError: self.on_audit_error, Exception: self.on_server_error})
        return SecurityHeaders(app)  # type: ignore[return-value]


_AUDIT_REFUSAL = ('Das Zugriffsprotokoll kann gerade nicht geschrieben werden; deshalb ist nichts geändert und '
                  'nichts angezeigt worden. Bitte den Administrator verständigen und es später erneut versuchen.')
_FAILED = ('Die Aktion ist fehlgeschlagen; es wurde nichts geändert. Bitte später erneut versuchen oder den '
           'Administrator verständigen (Einzelheiten im Dienstprotokoll).')
_NO_KEY = 'Auf diesem Rechner fehlt der Signaturschlüssel: bitte den Administrator verständigen.'


def _evidence_mark(folder: Path) -> dict[str, Any] | None:
    """The incident's evidence mark as shown (never read through a link), None without one."""
    try:
        return json.loads(read_regular(folder / EVIDENCE_FILE))
    except FileNotFoundError:
        return None
    except (OSError, FileModeError, ValueError) as error:
        _log.warning('evidence mark of %s unreadable: %s', folder.name, error)
        return None


def _query(request: Request) -> str:
    """The list's filter as audit target ('all' without one)."""
    return str(request.url.query)[:200] or 'all'


async def _form_body(request: Request, limit: int) -> bytes:
    """The body of a URL-encoded form of at most ``limit`` bytes, by Content-Length and as read."""
    if request.headers.get('content-type', '').split(';')[0].strip().lower() != FORM_TYPE:
        raise HTTPException(415, f'nur Formulardaten ({FORM_TYPE})')
    length = request.headers.get('content-length', '')
    if not length.isdigit():
        raise HTTPException(411, 'Länge der Formulardaten fehlt')
    if int(length) > limit:
        raise HTTPException(413, 'Formulardaten zu groß')
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, 'Formulardaten zu groß')
    return bytes(body)


def _cut(text: str, limit: int) -> str:
    """``text`` for the audit log: at most ``limit`` characters, and marked where cut."""
    return text if len(text) <= limit else text[:limit] + '…'


#: put into an alert stream's queue to make it check its session now
_WAKE = ('wake', None)


def _wake(queues: Iterable[asyncio.Queue]) -> None:
    for queue in queues:
        if queue.full():  # the wake-up must get in; an alert for an ended session need not
            queue.get_nowait()
        queue.put_nowait(_WAKE)


def _parse_time(text: str) -> datetime | None:
    """A filter time from an ``<input type=datetime-local>``: site time, like the times shown."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=SITE_ZONE) if moment.tzinfo is None else moment
