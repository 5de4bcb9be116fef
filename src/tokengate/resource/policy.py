"""Which requests need a token, and which scopes (the `securityMatcher` of a resource server).

Patterns are path globs: `*` matches within one segment, `**` across segments, and a trailing
`/**` also matches the prefix itself (`/auth-api/**` covers `/auth-api`). Rules are tried in
order and the first match decides; a path no rule matches passes untouched. A `GET` rule also
covers `HEAD`, since frameworks answer `HEAD` with the `GET` handler.

Paths with `//`, `.` or `..` segments are matched both as sent and normalized, and the stricter
answer wins, so a router or proxy that normalizes paths cannot be used to slip past a rule.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Requirement:
    """A protected request: a valid token holding every scope in `scopes`."""

    scopes: frozenset[str] = frozenset()


class Rule:
    """A path pattern, optionally restricted to some methods, and what it requires."""

    __slots__ = ("_regex", "methods", "pattern", "public", "scopes")

    def __init__(
        self,
        pattern: str,
        *,
        scopes: Iterable[str] = (),
        methods: Iterable[str] | None = None,
        public: bool = False,
    ) -> None:
        self.pattern = pattern
        self.scopes = frozenset(scopes)
        self.methods = None if methods is None else _with_head({m.upper() for m in methods})
        self.public = public
        self._regex = compile_pattern(pattern)

    def matches(self, method: str, path: str) -> bool:
        """True when this rule applies to `method` and `path`."""
        if self.methods is not None and method.upper() not in self.methods:
            return False
        return self._regex.fullmatch(path) is not None

    def __repr__(self) -> str:
        methods = sorted(self.methods) if self.methods is not None else "*"
        return f"Rule({self.pattern!r}, scopes={sorted(self.scopes)}, methods={methods})"


class Policy:
    """An ordered list of rules; the first rule matching a request decides."""

    __slots__ = ("rules",)

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)

    @classmethod
    def protect(cls, *patterns: str, scopes: Iterable[str] = ()) -> Policy:
        """Require a valid token (and `scopes`) on every path matching one of `patterns`."""
        needed = frozenset(scopes)
        return cls(Rule(pattern, scopes=needed) for pattern in patterns)

    def requirement(self, method: str, path: str) -> Requirement | None:
        """What a request needs, or None when it is not protected."""
        found = [self._first(method, candidate) for candidate in _candidates(path)]
        protected = [req for req in found if req is not None]
        if not protected:
            return None
        return Requirement(frozenset().union(*(req.scopes for req in protected)))

    def _first(self, method: str, path: str) -> Requirement | None:
        for rule in self.rules:
            if rule.matches(method, path):
                return None if rule.public else Requirement(rule.scopes)
        return None


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Translate a path glob into an anchored regular expression."""
    if not pattern.startswith("/"):
        raise ValueError(f"path pattern must start with '/': {pattern!r}")
    suffix = ""
    if pattern.endswith("/**"):
        pattern, suffix = pattern[:-3], "(?:/.*)?"
    parts = re.split(r"(\*\*|\*)", pattern)
    body = "".join({"**": ".*", "*": "[^/]*"}.get(part, re.escape(part)) for part in parts)
    return re.compile(body + suffix, re.DOTALL)


def _with_head(methods: set[str]) -> frozenset[str]:
    return frozenset(methods | {"HEAD"}) if "GET" in methods else frozenset(methods)


def _candidates(path: str) -> tuple[str, ...]:
    if "//" not in path and "/." not in path:
        return (path,)
    normalized = posixpath.normpath("/" + path.lstrip("/"))
    if path.endswith("/") and normalized != "/":
        normalized += "/"
    return (path, "/" + normalized.lstrip("/"))
