"""Shared by the in-process fuzz suites: example counts, adversarial paths and a path oracle.

The oracle recomputes, independently of `tokengate.resource.protocol.policy`, every path a router or
proxy behind the middleware might route a request to (the readings `policy.py` documents): the
path as sent, and combinations of one more percent-decoding, `\\` read as `/`, `;` path
parameters dropped, then `.`/`..` segments resolved as RFC 3986 §5.2.4 says (empty segments
kept, as URL libraries do) or with empty segments collapsed first (as POSIX and nginx do);
given the raw target, the same resolution before decoding (`request_readings`).
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("TOKENGATE_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Path segments that have slipped requests past path-based rules somewhere.
PIECES = ["auth-api", "public", "hello", "items", "me", "ping", "..", ".", "", "%2e%2e", "%2E.",
          "%2f", "x%2fy", "public%2F..", "..;", ";x=1", "auth-api;jsessionid=1", "..\\",
          "\\auth-api", "%5c", "%00", "auth-api%2fhello", "AUTH-API", "auth-apix", "%252e%252e",
          "_tokengate", "\u00e9", "\x00"]  # fmt: skip
segments = st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=6)


def _resolve(path: str) -> str:
    """RFC 3986 §5.2.4 dot segments, with empty segments dropped; a trailing slash kept."""
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            out = out[:-1]
        elif segment not in ("", "."):
            out.append(segment)
    trailing = "/" if path.endswith("/") and out else ""
    return "/" + "/".join(out) + trailing


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, step by step as the RFC writes it (empty segments are kept)."""
    source, out = path, ""
    while source:
        if source.startswith(("../", "./")):
            source = source[source.index("/") + 1 :]
        elif source.startswith("/./") or source == "/.":
            source = "/" + source[3:]
        elif source.startswith("/../") or source == "/..":
            source = "/" + source[4:]
            out = out[: out.rfind("/")] if "/" in out else ""
        elif source in (".", ".."):
            source = ""
        else:
            end = source.find("/", 1)
            end = len(source) if end == -1 else end
            out, source = out + source[:end], source[end:]
    return out


def readings(path: str) -> set[str]:
    """Every path a router behind the middleware might route `path` to."""
    found = {path}
    for decoded in (path, unquote(path)):
        for slashed in (decoded, decoded.replace("\\", "/")):
            for bare in (slashed, re.sub(r";[^/]*", "", slashed)):
                dotted = remove_dot_segments(bare)
                found |= {_resolve(bare), dotted, _resolve(dotted)}
    return found


def _decode_unreserved(raw: str) -> str:
    """Every `%XX` decoded but `%2F` (`/`), `%5C` (`\\`) and `%25` (`%`)."""
    return re.sub(
        r"%([0-9A-Fa-f]{2})",
        lambda m: m[0] if m[1].lower() in ("2f", "5c", "25") else chr(int(m[1], 16)),
        raw,
    )


def request_readings(path: str, raw_path: bytes) -> set[str]:
    """`readings(path)`, plus those of the encoded target resolved first and decoded after."""
    found = readings(path)
    raw = raw_path.decode("latin-1")
    for base in (raw, _decode_unreserved(raw)):
        for resolved in (remove_dot_segments(base), _resolve(base)):
            found |= readings(unquote(resolved))
    return found


def under(paths: set[str], prefix: str) -> bool:
    """True when one of `paths` is `prefix` or below it (`/auth-api/**`)."""
    return any(r == prefix or r.startswith(prefix + "/") for r in paths)


# RFC 6750 §3 and RFC 9449 §7.1 challenges, as the fuzz suites read them back.
_PARAM = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')
_ONE = r'[a-z_]+="(?:[^"\\]|\\.)*"'
_PARAMS = rf"{_ONE}(?:, {_ONE})*"
_CHALLENGES = re.compile(rf"(Bearer|DPoP) ({_PARAMS}), (Bearer|DPoP) ({_PARAMS})")
_ALGS = "ES256 RS256 PS256 EdDSA"


def challenge_params(challenge: str) -> dict[str, str] | None:
    """The auth-params of the first of the two challenges every refusal offers (`Bearer` and
    `DPoP`, the one carrying the error code first), else None. The second carries no error
    code; the `DPoP` one names the proof algorithms (`algs`), which are left out here."""
    found = _CHALLENGES.fullmatch(challenge)
    if found is None or {found.group(1), found.group(3)} != {"Bearer", "DPoP"}:
        return None
    first, second = dict(_PARAM.findall(found.group(2))), dict(_PARAM.findall(found.group(4)))
    dpop = first if found.group(1) == "DPoP" else second
    if dpop.pop("algs", None) != _ALGS or set(second) != {"realm"}:
        return None
    return first
