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

__all__ = ["MASK", "redact", "register_secret", "RedactingFilter"]

MASK = "***"
# scheme://user:password@ — the password runs to the last '@' before whitespace or a quote (over-redacts, never under)
_URL_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s'\"]*):(?P<secret>[^\s'\"]*)@")
_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Redact ``secret`` (e.g. a broker password, also its percent-encoded form) wherever :func:`redact` runs."""
    if not secret or len(secret) < 3:  # a one- or two-letter "secret" would mask half of every message
        return
    from urllib.parse import quote

    with _lock:
        _secrets.update({secret, quote(secret, safe="")})


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
