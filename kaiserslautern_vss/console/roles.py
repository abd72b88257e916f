"""The three console roles and what each may do (issue 15): each role includes the one before."""

from __future__ import annotations

OPERATOR, INVESTIGATOR, ADMIN = 'operator', 'investigator', 'admin'
ROLES = (OPERATOR, INVESTIGATOR, ADMIN)

VIEW_LIVE = 'view_live'
VIEW_INCIDENTS = 'view_incidents'
ACKNOWLEDGE = 'acknowledge'
TRIGGER = 'trigger'
EVIDENCE = 'evidence'
EXPORT = 'export'
READ_AUDIT = 'read_audit'
MANAGE_USERS = 'manage_users'

_OPERATOR = frozenset({VIEW_LIVE, VIEW_INCIDENTS, ACKNOWLEDGE, TRIGGER})
_INVESTIGATOR = _OPERATOR | {EVIDENCE, EXPORT}
PERMISSIONS: dict[str, frozenset[str]] = {
    OPERATOR: _OPERATOR,
    INVESTIGATOR: _INVESTIGATOR,
    ADMIN: _INVESTIGATOR | {READ_AUDIT, MANAGE_USERS},
}

#: German names shown in the interface
ROLE_LABELS = {OPERATOR: 'Bediener', INVESTIGATOR: 'Ermittler', ADMIN: 'Administrator'}


def allowed(role: str, permission: str) -> bool:
    """True if ``role`` may do ``permission``; unknown roles may do nothing."""
    return permission in PERMISSIONS.get(role, frozenset())
