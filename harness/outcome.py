"""What a check found: an Outcome carrying Evidence. Plain data, built without a server."""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.capture import CapturedRequest

OUTCOMES = ("pass", "fail", "warn", "skip", "error")
BODY_LIMIT = 16_000  # evidence keeps this many characters of any one body


def clip(text: str, limit: int = BODY_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"


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

    def curl(self) -> str:
        parts = ["curl", "-sS", "-X", self.method, shlex.quote(self.url)]
        for name, value in self.request_headers.items():
            if name in {"content-length", "host", "accept-encoding", "connection", "user-agent"}:
                continue
            if name == "authorization":
                value = "Bearer $GWCONF_API_KEY"
            parts += ["-H", shlex.quote(f"{name}: {value}")]
        if self.request_body:
            parts += ["--data-raw", shlex.quote(self.request_body)]
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

    @property
    def curl(self) -> str:
        return self.exchanges[0].curl() if self.exchanges else ""

    @property
    def diff(self) -> str:
        if not (self.expected or self.actual):
            return ""
        return f"- expected: {self.expected}\n+ actual:   {self.actual}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "exchanges": [asdict(x) | {"curl": x.curl()} for x in self.exchanges],
            "upstream": [r.to_dict() for r in self.upstream],
            "expected": self.expected,
            "actual": self.actual,
            "diff": self.diff,
            "curl": self.curl,
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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["evidence"] = self.evidence.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        fields = {k: v for k, v in data.items() if k != "evidence"}
        return cls(**fields, evidence=Evidence.from_dict(data.get("evidence", {})))
