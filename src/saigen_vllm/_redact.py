"""Keep secrets out of anything a person or a log can read, and server text in its place.

One home for it: every URL shown (errors, reprs, logs, the doctor, hook events) goes through
:func:`redact_url` or :func:`redact_urls`, and every piece of text that came from a server goes
through :func:`server_text` before it reaches an exception, a log line, a hook or the doctor."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

REDACTED = "***"
SERVER_TEXT_LIMIT = 500
"""Characters of a server's message kept in an error: enough to read, not a page of HTML."""

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s@]+)@")
_QUERY_VALUE = re.compile(r"(?P<name>[^&=?#\s]+)=(?P<value>[^&#\s]*)")
_BEARER = re.compile(r"(?i)\b(bearer|basic|token|api[_-]?key)(\s*[:=]?\s*)([A-Za-z0-9._~+/=-]{6,})")
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def redact_url(url: str) -> str:
    """Drop any ``user:password@`` and query values from a URL before showing it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # not a URL we can take apart: redact what looks like credentials
        return redact_urls(url)
    if parts.username is None and parts.password is None and not parts.query:
        return url
    netloc = parts.netloc
    if parts.username is not None or parts.password is not None:
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{REDACTED}@{host}" + (f":{port}" if port else "")
    query = _QUERY_VALUE.sub(lambda m: f"{m.group('name')}={REDACTED}", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def split_credentials(url: str) -> tuple[str, str | None]:
    """``(url without user:password@, the matching HTTP Basic Authorization value or None)``:
    credentials travel in a header, never inside a URL that a library might log or print."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    import base64
    from urllib.parse import unquote

    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, "Basic " + base64.b64encode(pair.encode()).decode()


def redact_urls(text: str) -> str:
    """Every ``scheme://user:password@`` in free text, with the credentials replaced."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)


def redact_text(text: str, *secrets: str | None) -> str:
    """Replace every occurrence of each non-empty secret in ``text``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


def server_text(text: object, *secrets: str | None, limit: int = SERVER_TEXT_LIMIT) -> str:
    """Text a server sent, made safe to show: the key (and anything that looks like a bearer
    token or URL credentials) redacted, control characters (terminal escapes) removed, one
    line, at most ``limit`` characters."""
    shown = redact_text(str(text), *secrets)
    shown = redact_urls(shown)
    shown = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", shown)
    shown = _ESCAPES.sub("", shown)
    shown = _CONTROL.sub("", shown.replace("\r", " ").replace("\n", " ").replace("\t", " "))
    shown = re.sub(r" {2,}", " ", shown).strip()
    if len(shown) > limit:
        shown = shown[: limit - 3].rstrip() + "..."
    return shown
