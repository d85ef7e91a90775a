"""Users, roles, API tokens and the login rate limit: the logic, shared by the web app and the CLI.

Passwords are hashed with werkzeug's scrypt. API tokens are random secrets shown once; the database
keeps only their sha256, so a leaked database does not leak working tokens. There is no default user
or password: the first admin is created with ``cloud-hub users add NAME --role admin``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from cloud_hub.models import ApiToken, LoginFailure, User, WebSession

ROLES = ("admin", "viewer")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "esk_"
RATE_WINDOW_S = 60.0
# Checked against when a username does not exist, so both paths cost one scrypt (no user enumeration).
_DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt")


class AuthError(ValueError):
    """A refused user or token operation, with a message fit to show."""


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def create_user(db: Session, username: str, password: str, role: str) -> User:
    if not USERNAME_RE.match(username):
        raise AuthError("username: 1-64 letters, digits or _ . @ -")
    if role not in ROLES:
        raise AuthError(f"role: one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    if db.scalar(select(User).where(User.username == username)) is not None:
        raise AuthError(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), role=role, created_at=time.time(),
                disabled=False)
    db.add(user)
    db.commit()
    return user


def authenticate(db: Session, username: str, password: str) -> User | None:
    user = db.scalar(select(User).where(User.username == username))
    if user is None or user.disabled:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def user_count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(User)) or 0)


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    id: int
    name: str
    secret: str


def create_token(db: Session, user: User, name: str) -> NewToken:
    name = name.strip()
    if not 1 <= len(name) <= 64:
        raise AuthError("token name: 1-64 characters")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_sha256=token_digest(secret), created_at=time.time())
    db.add(token)
    db.commit()
    return NewToken(token.id, name, secret)


def user_for_token(db: Session, secret: str) -> User | None:
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = db.scalar(select(ApiToken).where(ApiToken.token_sha256 == token_digest(secret),
                                             ApiToken.revoked_at.is_(None)))
    if token is None:
        return None
    user = db.get(User, token.user_id)
    if user is None or user.disabled:
        return None
    now = time.time()
    if token.last_used_at is None or now - token.last_used_at > 60:
        token.last_used_at = now
        db.commit()
    return user


def revoke_token(db: Session, token_id: int, by: User) -> ApiToken:
    token = db.get(ApiToken, token_id)
    if token is None or (token.user_id != by.id and by.role != "admin"):
        raise AuthError("no such token")
    if token.revoked_at is None:
        token.revoked_at = time.time()
        db.commit()
    return token


def tokens_of(db: Session, user: User) -> list[ApiToken]:
    return list(db.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)))


class LoginRateLimit:
    """At most ``limit`` login attempts evaluated per client per minute, counted in the database so every
    gunicorn worker sees the same count.

    An attempt is *reserved* (a row) and counted in one transaction that holds the client's lock (a
    PostgreSQL advisory lock; SQLite's single writer lock does the same), so reservations are counted
    one after another: the k-th sees exactly k rows, and of however many parallel requests exactly
    ``limit`` are evaluated. (Committing first and counting after could see every racing row and refuse
    them all; counting before the slow scrypt let 33 of 40 through.) A successful login gives its
    reservation back.
    """

    def __init__(self, limit: int):
        self.limit = limit

    def reserve(self, db: Session, client: str) -> int | None:
        """The reservation's id when this attempt may be evaluated, None when the client is over the limit."""
        now = time.time()
        key = client[:128]
        if db.get_bind().dialect.name == "postgresql":
            db.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": "edgesight-login:" + key})
        db.execute(delete(LoginFailure).where(LoginFailure.at < now - 10 * RATE_WINDOW_S))
        row = LoginFailure(client=key, at=now)
        db.add(row)
        db.flush()
        seen = db.scalar(select(func.count()).select_from(LoginFailure)
                         .where(LoginFailure.client == key, LoginFailure.at > now - RATE_WINDOW_S))
        db.commit()
        return row.id if int(seen or 0) <= self.limit else None

    def release(self, db: Session, reservation: int) -> None:
        """A successful login does not count against the client."""
        db.execute(delete(LoginFailure).where(LoginFailure.id == reservation))
        db.commit()


def open_session(db: Session, user: User) -> str:
    """A server-side session row; the signed cookie carries only its id (and the user's)."""
    sid = secrets.token_urlsafe(32)
    db.add(WebSession(id=sid, user_id=user.id, created_at=time.time()))
    db.commit()
    return sid


def session_valid(db: Session, sid: str | None, user_id: int) -> bool:
    if not sid:
        return False
    row = db.get(WebSession, sid)
    return row is not None and row.user_id == user_id


def close_session(db: Session, sid: str | None) -> None:
    if sid:
        db.execute(delete(WebSession).where(WebSession.id == sid))
        db.commit()


def change_password(db: Session, user: User, current: str, new: str) -> None:
    """Checks the current password, sets the new one and ends every session of the user (a stolen
    cookie dies with the old password); the caller opens a fresh session for the browser in hand."""
    if not check_password_hash(user.password_hash, current):
        raise AuthError("current password is wrong")
    if len(new) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = hash_password(new)
    db.execute(delete(WebSession).where(WebSession.user_id == user.id))
    db.commit()
