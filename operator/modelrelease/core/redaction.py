"""What may be shown of a URL or of text from outside the operator (pure).

Status, Events and logs are read by more people than the Secrets and services
a spec points at. URLs are shown without their userinfo, query and fragment,
where tokens travel, and without path segments that look like tokens; text that
a remote service chose (a webhook's answer, an error string) is shown only as a
short phrase of plain words.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MAX_PHRASE_CHARS = 80
"""A shown phrase is cut to this many characters."""
_PHRASE_CHARACTERS = re.compile(r"[A-Za-z0-9 .,;:'()\[\]_-]*")
_TOKEN_MIN_CHARS = 32  # a word this long is taken for a token, whatever it holds
_LONG_RUN_CHARS = 24  # ... or one with a run of this many letters and digits
_MIXED_RUN_CHARS = 12  # ... or of this many with a digit among them
_ALPHANUMERIC_RUN = re.compile(r"[A-Za-z0-9]+")
_HAS_DIGIT = re.compile(r"[0-9]")
_WHITESPACE = re.compile(r"\s+")
NO_HOST = "(a URL without a host)"
HIDDEN = "***"


def redact_url(url: str) -> str:
    """``url`` without userinfo, query string and fragment: scheme, host, port and path,
    with path segments that look like tokens (as in chat webhook URLs) hidden."""
    parts = urlsplit(url.strip())
    host_and_port = parts.netloc.rpartition("@")[2]
    if not host_and_port:
        # Without a host, urlsplit may have read userinfo as a path: show nothing of it.
        return NO_HOST
    path = "/".join(
        HIDDEN if _looks_like_token(segment) else segment for segment in parts.path.split("/")
    )
    return urlunsplit((parts.scheme, host_and_port, path, "", ""))


def safe_phrase(text: str, limit: int = MAX_PHRASE_CHARS) -> str | None:
    """``text`` on one line and at most ``limit`` characters, or None when it is not
    plain words: characters beyond letters, digits, spaces and ``.,;:'()[]_-`` (so no
    ``=``, ``/``, ``@`` or ``?`` of URLs and key-value pairs), or a word that looks
    like a token (long, or letters mixed with digits)."""
    line = _WHITESPACE.sub(" ", text).strip()
    if not line or not _PHRASE_CHARACTERS.fullmatch(line):
        return None
    if any(_looks_like_token(word) for word in line.split(" ")):
        return None
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


def _looks_like_token(word: str) -> bool:
    """Long words (UUIDs, JWTs, keys) and long letter-digit runs (digests, base62 keys);
    model names such as ``llama-3-8b-instruct`` stay readable."""
    if len(word) >= _TOKEN_MIN_CHARS:
        return True
    return any(
        len(run) >= _LONG_RUN_CHARS or (len(run) >= _MIXED_RUN_CHARS and _HAS_DIGIT.search(run))
        for run in _ALPHANUMERIC_RUN.findall(word)
    )
