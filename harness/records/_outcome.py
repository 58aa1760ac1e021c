"""What a check found: an Outcome carrying Evidence. Plain data, built without a server."""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.records._capture import CapturedRequest

OUTCOMES = ("pass", "fail", "warn", "skip", "error", "blocked")
# A failure its precondition explains: another check of the run failed first (`blocked_by`).
# It is not a failure of its own and changes neither the verdict nor an exit code.
FAILED = ("fail", "warn")
BODY_LIMIT = 16_000  # evidence keeps this many characters of any one body


def clip(text: str, limit: int = BODY_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"


GATEWAY_URL_VAR = "GWCONF_GATEWAY_URL"
SKIPPED_CURL_HEADERS = frozenset({"content-length", "host", "accept-encoding", "connection", "user-agent",
                                  "content-type"})


def shell_word(text: str, variables: dict[str, str]) -> str:
    """`text` as one shell word, each occurrence of a `variables` key replaced by "${VALUE}"."""
    for literal, variable in variables.items():
        if literal and literal in text:
            return f'"${{{variable}}}"'.join(shell_word(piece, variables) if piece else ""
                                             for piece in text.split(literal))
    return shlex.quote(text) if text else ""


@dataclass
class Exchange:
    """One client request to the gateway and what came back (secrets already scrubbed)."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    elapsed: float = 0.0
    error: str | None = None  # transport failure: timeout, refused, cut short
    path: str = ""  # path and query on the gateway; "" when the URL is not the gateway's
    form: list[list[str]] = field(default_factory=list)  # multipart parts: [name, value or "@file;type=..."]

    def curl(self, variables: dict[str, str] | None = None) -> str:
        """A curl that works after the run: the gateway's address is a shell variable, the
        client key an environment variable, a multipart body its `--form` parts, and every URL
        named in `variables` (a mock's, inside a routing header) the shell variable given."""
        if not self.path:
            return ""
        names = dict(variables or {})

        def word(text: str) -> str:
            return shell_word(text, names)

        parts = ["curl", "-sS", "-X", self.method, f'"${GATEWAY_URL_VAR}"' + word(self.path)]
        for name, value in self.request_headers.items():
            if name in SKIPPED_CURL_HEADERS and not (name == "content-type" and not self.form):
                continue
            if name == "authorization":
                parts += ["-H", f'"{name}: Bearer $GWCONF_API_KEY"']
                continue
            parts += ["-H", word(f"{name}: {value}")]
        if self.form:
            for name, value in self.form:
                parts += ["--form" if value.startswith("@") else "--form-string", word(f"{name}={value}")]
        elif self.request_body:
            parts += ["--data-raw", word(self.request_body)]
        return " ".join(parts)

    def summary(self) -> str:
        status = self.error or str(self.status)
        return f"{self.method} {self.url} -> {status} ({self.elapsed:.2f}s)"


@dataclass
class Evidence:
    exchanges: list[Exchange] = field(default_factory=list)
    upstream: list[CapturedRequest] = field(default_factory=list)
    expected: str = ""
    actual: str = ""
    notes: list[str] = field(default_factory=list)
    rerun: str = ""  # the gwconf command that runs this check again
    variables: dict[str, str] = field(default_factory=dict)  # mock URL -> the shell variable naming it

    @property
    def curl(self) -> str:
        """The reproduction: the gwconf line, then a curl per client request, in order."""
        curls = [c for c in (x.curl(self.variables) for x in self.exchanges) if c]
        lines = [self.rerun] if self.rerun else []
        if curls:
            lines.append(f"# {GATEWAY_URL_VAR}: the gateway's base URL; GWCONF_API_KEY: its client key")
            if any("_URL}" in c or "_KEY}" in c for c in curls):
                lines.append("# GWCONF_<UPSTREAM>_URL: the mocks, as `gwconf upstreams` prints them; "
                             "GWCONF_<UPSTREAM>_KEY: any key (those mocks accept any)")
            lines += curls
        return "\n".join(lines)

    @property
    def diff(self) -> str:
        if not (self.expected or self.actual):
            return ""
        return f"- expected: {self.expected}\n+ actual:   {self.actual}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "exchanges": [asdict(x) | {"curl": x.curl(self.variables)} for x in self.exchanges],
            "upstream": [r.to_dict() for r in self.upstream],
            "expected": self.expected,
            "actual": self.actual,
            "diff": self.diff,
            "curl": self.curl,
            "rerun": self.rerun,
            "variables": dict(self.variables),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        return cls(
            exchanges=[Exchange(**{k: v for k, v in x.items() if k != "curl"})
                       for x in data.get("exchanges", [])],
            upstream=[CapturedRequest.from_dict(r) for r in data.get("upstream", [])],
            expected=data.get("expected", ""),
            actual=data.get("actual", ""),
            notes=list(data.get("notes", [])),
            rerun=data.get("rerun", ""),
            variables=dict(data.get("variables", {})),
        )


@dataclass
class Outcome:
    check_id: str
    title: str
    level: str
    category: str
    outcome: str  # one of OUTCOMES
    duration: float
    message: str = ""
    spec: str = ""
    evidence: Evidence = field(default_factory=Evidence)
    fates: list[dict[str, Any]] = field(default_factory=list)  # PARAM checks: each parameter's fate
    assertion: str = ""  # the failing assertion ("MAP-004#3"), numbered by harness.checks._assertions
    blocked_by: list[str] = field(default_factory=list)  # a blocked check: the failures that explain it
    # A failed precondition: the checks whose failure would explain it. Resolved once the run's
    # outcomes are in (harness.checks._judge.resolve_blocked), then emptied.
    candidates: list[str] = field(default_factory=list)
    observes: str = ""  # what the check observes: "client" or "upstream" (harness.checks._registry)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["evidence"] = self.evidence.to_dict()
        if not self.fates:
            del data["fates"]
        for optional in ("assertion", "blocked_by", "candidates", "observes"):
            if not data[optional]:
                del data[optional]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        fields = {k: v for k, v in data.items() if k != "evidence"}
        return cls(**fields, evidence=Evidence.from_dict(data.get("evidence", {})))
