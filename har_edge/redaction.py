"""Keeping secrets out of output: URL passwords and registered secrets are replaced by ``***``.

Every message that may hold a broker URL goes through :func:`redact` (errors of URL parsing, source specs);
configuration objects register their password with :func:`register_secret`, and the command line installs
:class:`RedactingFilter` on its log handlers and redacts the one-line error it prints, so a password reaches
neither stdout, stderr, a log line nor an exception message.

>>> redact("cannot parse 'mqtt://pi:hunter2@broker.local:x'")
"cannot parse 'mqtt://pi:***@broker.local:x'"
"""

from __future__ import annotations

import logging
import re
import threading

__all__ = ["MASK", "redact", "register_secret", "register_url_password", "RedactingFilter"]

MASK = "***"
# scheme://user:password@ — the password runs to the last '@' before whitespace (over-redacts, never under)
_URL_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s'\"]*):(?P<secret>\S*)@")
_MAX_SECRETS = 64  # a process has a handful; the oldest are forgotten beyond this (bounded memory and work)
_secrets: dict[str, None] = {}  # insertion-ordered set
_lock = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Redact ``secret`` (e.g. a broker password, also its percent-encoded form) wherever :func:`redact` runs."""
    if not secret or len(secret) < 3:  # a one- or two-letter "secret" would mask half of every message
        return
    from urllib.parse import quote

    with _lock:
        for s in (secret, quote(secret, safe="")):
            _secrets.pop(s, None)
            _secrets[s] = None
        while len(_secrets) > _MAX_SECRETS:
            del _secrets[next(iter(_secrets))]


def register_url_password(url: str) -> None:
    """Register the password of ``scheme://user:password@...`` as a secret, however malformed the rest of the URL.

    Call it before parsing, so no error about the URL can show the password (not even one the URL pattern of
    :func:`redact` misses, e.g. a password with spaces or quotes).
    """
    from urllib.parse import unquote

    _, sep, rest = url.partition("://")
    userinfo = rest.rpartition("@")[0] if sep else ""
    if ":" in userinfo:
        password = userinfo.split(":", 1)[1]
        register_secret(password)
        register_secret(unquote(password))


def redact(text: str) -> str:
    """``text`` with URL passwords and every registered secret replaced by ``***``."""
    if "://" in text:
        text = _URL_USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """A handler filter that redacts the formatted message (and any traceback text) of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
