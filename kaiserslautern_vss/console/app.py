"""The console web application (Starlette): pages, JSON/JPEG API, alert stream.

Security model: server-side sessions in a ``__Host-`` cookie (Secure, HttpOnly,
SameSite=Strict), a CSRF token per session on every POST, login with password (argon2)
and TOTP behind a rate limit and lockout, role checks on every route, strict security
headers (CSP without inline scripts, HSTS), ``Cache-Control: no-store`` so no frame of
a recording lands in a browser cache. Every view of a recording and every action goes
into the keyed audit log (who, what, when, why); if it cannot be written, the
access is refused.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
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
from kaiserslautern_vss.console.casework import (SAFE_CASE, CaseworkError, export_for_case, set_evidence,
                                                 verify_signature)
from kaiserslautern_vss.console.incidents import (STATE_LABELS, STATES, IncidentFilter, IncidentNotFound,
                                                  incident_folder, list_incidents)
from kaiserslautern_vss.console.live import LiveState, short_id
from kaiserslautern_vss.console.login_guard import LoginGuard
from kaiserslautern_vss.console.playback import PlaybackError, RecordingCache
from kaiserslautern_vss.console.sessions import Session, SessionStore
from kaiserslautern_vss.console.settings import ConsoleSettings
from kaiserslautern_vss.recordings.audit import AuditError, AuditLog
from kaiserslautern_vss.recordings.integrity import IntegrityError, load_or_create_signing_key
from kaiserslautern_vss.recordings.retention import started_from_name
from kaiserslautern_vss.timekeeping import DEFAULT_TIMEZONE

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
        self.guard = LoginGuard(self.settings.login_policy)
        key_file = self.settings.encryption_key_file
        self.encryption_key = key_file.read_bytes() if key_file is not None else None
        self.recordings = RecordingCache(self.encryption_key)
        self.audit_log = AuditLog(self.settings.audit_log, self.settings.audit_key_file)
        self._signing_key: Ed25519PrivateKey | None = None
        self._nobody = Account('-', roles.OPERATOR, hash_password(secrets.token_urlsafe(24)), '')
        self.templates = Jinja2Templates(directory=str(HERE / 'templates'))
        self.templates.env.globals.update(role_labels=roles.ROLE_LABELS, state_labels=STATE_LABELS)
        self.templates.env.filters['ortszeit'] = lambda moment: moment.astimezone(SITE_ZONE).strftime(
            '%d.%m.%Y %H:%M:%S')
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
        self.audit_log.append(who, what, target, why, when=self.now())

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

    async def form(self, request: Request, session: Session | None) -> FormData:
        """The POSTed form, after checking its CSRF token (session's, or the login cookie's)."""
        form = await request.form()
        expected = session.csrf_token if session is not None else request.cookies.get(LOGIN_COOKIE, '')
        sent = str(form.get('csrf_token') or request.headers.get('x-csrf-token', ''))
        if not expected or not hmac.compare_digest(sent, expected):
            raise HTTPException(403, 'CSRF-Prüfung fehlgeschlagen')
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
        form = await self.form(request, None)
        user, password, code = str(form.get('user', '')), str(form.get('password', '')), str(form.get('totp', ''))
        client = request.client.host if request.client else '?'
        now = self.clock()
        refusal = self.guard.refusal(user, client, now)
        if refusal:
            return self._login_form(request, refusal, 429)
        account = self.accounts.get(user)
        # unknown names cost the same argon2 check, so timing does not reveal which names exist
        password_ok = await run_in_threadpool(password_matches, account or self._nobody, password)
        step = totp_counter(account, code, now) if account and password_ok else None
        if account is None or step is None or not self.guard.accept_totp_step(user, step):
            locked = self.guard.record_failure(user, now)
            await run_in_threadpool(self.audit, user or '-', 'login failed', client,
                                    'Konto gesperrt nach Fehlversuchen' if locked else 'falsches Passwort oder Code')
            return self._login_form(request, 'Anmeldung fehlgeschlagen: Benutzer, Passwort oder Code falsch.', 401)
        self.guard.record_success(user)
        session = self.sessions.create(account.name, account.role, credentials(account), now)
        await run_in_threadpool(self.audit, account.name, 'login', client, f'Anmeldung als {account.role}')
        response = RedirectResponse('/live' if roles.allowed(account.role, roles.VIEW_LIVE) else '/incidents', 303)
        response.set_cookie(SESSION_COOKIE, session.id, secure=True, httponly=True, samesite='strict', path='/')
        response.delete_cookie(LOGIN_COOKIE, secure=True, httponly=True, samesite='strict', path='/')
        return response

    async def logout(self, request: Request) -> Response:
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE), self.clock())
        if session is not None:
            await self.form(request, session)
            self.sessions.end(session.id)
            await run_in_threadpool(self.audit, session.user, 'logout', '-', 'Abmeldung')
        response = RedirectResponse('/login', 303)
        response.delete_cookie(SESSION_COOKIE, secure=True, httponly=True, samesite='strict', path='/')
        return response

    # --- live view -------------------------------------------------------------------
    async def live_page(self, request: Request) -> Response:
        session = self.session(request, roles.VIEW_LIVE)
        return self.page(request, 'live.html', session, cameras=self.settings.cameras,
                         refresh_ms=int(1000 / self.settings.live_refresh_hz))

    async def live_status(self, request: Request) -> Response:
        self.session(request, roles.VIEW_LIVE, activity=False)
        return JSONResponse({'cameras': self.live.cameras_status()})

    async def live_frame(self, request: Request) -> Response:
        self.session(request, roles.VIEW_LIVE, activity=False)
        frame = self.live.frame(request.path_params['camera'])
        if frame is None:
            return Response(status_code=404)
        return Response(frame[1], media_type='image/jpeg', headers={'x-frame-seq': str(frame[0])})

    async def live_detections(self, request: Request) -> Response:
        self.session(request, roles.VIEW_LIVE, activity=False)
        return JSONResponse({'boxes': self.live.detections(request.path_params['camera'])})

    async def alerts(self, request: Request) -> Response:
        self.session(request, roles.VIEW_LIVE, activity=False)
        return JSONResponse({'alerts': self.live.alerts()})

    async def event_stream(self, request: Request) -> Response:
        """Server-sent events: ``incident`` and ``ack`` as they happen, a comment every 15 s."""
        self.session(request, roles.VIEW_LIVE, activity=False)
        queue = self.live.subscribe()

        async def stream():
            try:
                yield 'retry: 2000\n\n'
                while True:
                    try:
                        kind, payload = await asyncio.wait_for(queue.get(), timeout=15.0)
                    except asyncio.TimeoutError:
                        yield ': keep-alive\n\n'
                        continue
                    yield f'event: {kind}\ndata: {json.dumps(payload)}\n\n'
            finally:
                self.live.unsubscribe(queue)

        return StreamingResponse(stream(), media_type='text/event-stream', headers={'x-accel-buffering': 'no'})

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
        success, message = await run_in_threadpool(self.trigger, camera)
        await run_in_threadpool(self.audit, session.user, 'trigger', camera,
                                f'{reason} -> {"ok" if success else "fehlgeschlagen"}: {message}')
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
        incidents, incident_filter = await run_in_threadpool(self._incident_list, request)
        rules = sorted({i.rule for i in incidents})
        return self.page(request, 'incidents.html', session, incidents=incidents, filter=incident_filter,
                         cameras=self.settings.cameras, rules=rules, states=STATES)

    async def incidents_api(self, request: Request) -> Response:
        self.session(request, roles.VIEW_INCIDENTS)
        incidents, _ = await run_in_threadpool(self._incident_list, request)
        return JSONResponse({'incidents': [{
            'name': i.name, 'camera': i.camera, 'rule': i.rule, 'started': i.started.isoformat(),
            'size_bytes': i.size_bytes, 'states': sorted(i.states), 'encrypted': i.encrypted} for i in incidents]})

    async def incident_page(self, request: Request) -> Response:
        session = self.session(request, roles.VIEW_INCIDENTS)
        folder = self.folder(request.path_params['name'])
        return await self._incident_view(request, session, folder)

    async def _incident_view(self, request: Request, session: Session, folder: Path, status: int = 200,
                             **context: Any) -> Response:
        summary = next((i for i in (await run_in_threadpool(self._incident_list, request))[0]
                        if i.name == folder.name), None)
        evidence = json.loads((folder / 'evidence.json').read_text()) if (folder / 'evidence.json').is_file() else None
        return self.page(request, 'incident.html', session, status, incident=summary, name=folder.name,
                         evidence=evidence, acknowledgement=self.live.acknowledgement(short_id(folder.name)),
                         **context)

    async def timeline(self, request: Request) -> Response:
        session = self.session(request, roles.VIEW_INCIDENTS)
        folder = self.folder(request.path_params['name'])
        try:
            recording = await run_in_threadpool(self.recordings.get, folder)
        except PlaybackError as error:
            return JSONResponse({'error': str(error)}, 409)
        await run_in_threadpool(self.audit, session.user, 'view recording', folder.name, 'Wiedergabe in der Leitstelle')
        session.opened_recordings.add(folder.name)
        return JSONResponse(recording.timeline())

    async def recording_frame(self, request: Request) -> Response:
        session = self.session(request, roles.VIEW_INCIDENTS, activity=False)
        folder = self.folder(request.path_params['name'])
        if folder.name not in session.opened_recordings:  # frames only after the audited opening
            return Response('Aufzeichnung zuerst öffnen', 409)
        recording = await run_in_threadpool(self.recordings.get, folder)
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
        except (CaseworkError, IntegrityError, OSError) as error:
            return await self._incident_view(request, session, folder, 400, error=str(error))
        return RedirectResponse(f'/incidents/{folder.name}', 303)

    async def verify(self, request: Request) -> Response:
        session = self.session(request, roles.EVIDENCE)
        folder = self.folder(request.path_params['name'])
        await self.form(request, session)
        if self.signing_key is None:
            return await self._incident_view(request, session, folder, 503, error=self._no_key())
        findings = await run_in_threadpool(lambda: verify_signature(
            folder, self.signing_key, who=session.user, when=self.now(), audit=self.audit_log))
        return await self._incident_view(request, session, folder, verification=findings)

    async def export(self, request: Request) -> Response:
        session = self.session(request, roles.EXPORT)
        folder = self.folder(request.path_params['name'])
        form = await self.form(request, session)
        if self.signing_key is None:
            return await self._incident_view(request, session, folder, 503, error=self._no_key())
        try:
            exported = await run_in_threadpool(lambda: export_for_case(
                folder, self.recordings.get(folder), case_reference=str(form.get('case_reference', '')),
                who=session.user, when=self.now(), export_root=self.settings.export_root,
                signing_key=self.signing_key, encryption_key=self.encryption_key, audit=self.audit_log))
        except (CaseworkError, PlaybackError, OSError) as error:
            return await self._incident_view(request, session, folder, 400, error=str(error))
        return await self._incident_view(request, session, folder, exported=exported)

    async def export_download(self, request: Request) -> Response:
        """The archive of an export, for the investigator handing it to the police (audited)."""
        session = self.session(request, roles.EXPORT)
        case, name = request.path_params['case'], request.path_params['name']
        archive = self.settings.export_root / case / f'{name}.zip'
        if not SAFE_CASE.fullmatch(case) or started_from_name(name) is None or not archive.is_file():
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
        now = self.clock()
        users = [(account, self.guard.is_locked(account.name, now)) for account in self.accounts.all().values()]
        return self.page(request, 'users.html', session, users=users, users_file=self.settings.users_file)

    async def unlock_user(self, request: Request) -> Response:
        session = self.session(request, roles.MANAGE_USERS)
        form = await self.form(request, session)
        name = str(form.get('user', ''))
        self.guard.unlock(name)
        await run_in_threadpool(self.audit, session.user, 'unlock user', name, 'Sperre aufgehoben')
        return RedirectResponse('/users', 303)

    async def home(self, request: Request) -> Response:
        return RedirectResponse('/live', 303)

    def _no_key(self) -> str:
        return f'Signaturschlüssel {self.settings.signing_key_file} fehlt auf diesem Rechner'

    # --- errors ----------------------------------------------------------------------
    async def on_audit_error(self, request: Request, error: Exception) -> Response:
        """No access that cannot be audited (fail closed)."""
        message = f'Zugriffsprotokoll nicht schreibbar, Zugriff verweigert: {error}'
        if request.url.path.startswith('/api/'):
            return JSONResponse({'error': message}, 503)
        return self.page(request, 'error.html', None, 503, message=message)

    async def on_not_logged_in(self, request: Request, _: Exception) -> Response:
        if request.url.path.startswith('/api/'):
            return JSONResponse({'error': 'nicht angemeldet'}, 401)
        return RedirectResponse('/login', 303)

    async def on_forbidden(self, request: Request, refusal: Exception) -> Response:
        assert isinstance(refusal, Forbidden)
        await run_in_threadpool(self.audit, refusal.session.user, 'refused', request.url.path,
                                f'Rolle {refusal.session.role} ohne Recht {refusal.permission}')
        if request.url.path.startswith('/api/'):
            return JSONResponse({'error': 'Zugriff verweigert'}, 403)
        return self.page(request, 'refused.html', refusal.session, 403)

    async def on_http_error(self, request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        if request.url.path.startswith('/api/'):
            return JSONResponse({'error': error.detail}, error.status_code)
        return self.page(request, 'error.html', None, error.status_code, message=error.detail)

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
            AuditError: self.on_audit_error})
        return SecurityHeaders(app)  # type: ignore[return-value]


def _parse_time(text: str) -> datetime | None:
    """A filter time from an ``<input type=datetime-local>``: site time, like the times shown."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=SITE_ZONE) if moment.tzinfo is None else moment
