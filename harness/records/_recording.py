"""What a scenario recorded: plain, scrubbed data that a check judges, online or long after.

A Recording is one scenario's traffic: named steps, each with the client exchanges it sent,
what the gateway answered (as data), every upstream request it caused together with what the
upstream answered, and the egress attempts seen meanwhile. RunFacts are the few things about
the run a judgement may use besides the profile (never a key: fingerprints only).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from harness.records._capture import CapturedRequest
from harness.records._outcome import Exchange
from harness.records._plain import plain
from harness.upstream._egress import EgressAttempt


@dataclass
class Answer:
    """A gateway's answer as data: what a check reads instead of a live httpx.Response."""

    status_code: int
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    text: str = ""
    seconds: float = 0.0

    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def elapsed(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        return cls(**data)


@dataclass
class Step:
    """One named action of a scenario and everything it caused."""

    name: str
    token: str
    value: dict[str, Any] = field(default_factory=dict)  # what the driver made of the answer
    exchanges: list[Exchange] = field(default_factory=list)
    upstream: list[CapturedRequest] = field(default_factory=list)
    timeout: str | None = None  # the client gave up waiting: the profile's bound passed
    error: str | None = None  # the harness could not drive the step (gateway unreachable, ...)
    skipped: str | None = None  # nothing was sent on purpose (a black-box run's live budget was spent)
    # The gateway stopped answering (a timeout no liveness probe got past, or the breaker was
    # open and nothing was sent): every check that reads the step is an error, labelled so.
    stopped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "token": self.token, "value": self.value,
                "exchanges": [plain(x) for x in self.exchanges],
                "upstream": [r.to_dict() for r in self.upstream],
                "timeout": self.timeout, "error": self.error, "skipped": self.skipped,
                "stopped": self.stopped}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Step:
        return cls(data["name"], data["token"], dict(data.get("value", {})),
                   [Exchange(**x) for x in data.get("exchanges", [])],
                   [CapturedRequest.from_dict(r) for r in data.get("upstream", [])],
                   data.get("timeout"), data.get("error"), data.get("skipped"), data.get("stopped"))


@dataclass
class Recording:
    """One scenario's whole traffic, in the order it was sent."""

    scenario: str
    steps: list[Step] = field(default_factory=list)
    egress: list[EgressAttempt] = field(default_factory=list)
    stray: list[CapturedRequest] = field(default_factory=list)  # other upstream requests of the run (keep_stray)
    duration: float = 0.0
    error: str | None = None  # the scenario itself broke: every judgement is an error
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None  # the scenario stopped on purpose (live budget spent): its checks skip

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    @property
    def exchanges(self) -> list[Exchange]:
        return [x for s in self.steps for x in s.exchanges]

    @property
    def upstream(self) -> list[CapturedRequest]:
        return sorted((r for s in self.steps for r in s.upstream), key=lambda r: r.seq)

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "steps": [s.to_dict() for s in self.steps],
                "egress": [a.to_dict() for a in self.egress],
                "stray": [r.to_dict() for r in self.stray],
                "duration": self.duration, "error": self.error, "notes": list(self.notes),
                "skipped": self.skipped}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recording:
        return cls(data["scenario"], [Step.from_dict(s) for s in data.get("steps", [])],
                   [EgressAttempt.from_dict(a) for a in data.get("egress", [])],
                   [CapturedRequest.from_dict(r) for r in data.get("stray", [])],
                   float(data.get("duration", 0.0)), data.get("error"), list(data.get("notes", [])),
                   data.get("skipped"))


@dataclass
class RunFacts:
    """What a judgement may know about the run beyond the profile: no key, only fingerprints."""

    profile_path: str
    profile_arg: str = ""  # the --gateway argument as typed: the repro line repeats it
    files_dir: str = ""
    gateway_started: bool = False
    has_second_key: bool = False
    client_key_marks: list[str] = field(default_factory=list)  # fingerprints of the client keys
    provider_key_marks: list[str] = field(default_factory=list)  # of the gateway's provider keys
    timeouts: dict[str, float] = field(default_factory=dict)  # the bounds the run used
    upstream_urls: dict[str, str] = field(default_factory=dict)  # the mocks' loopback URLs
    provider_key_names: dict[str, str] = field(default_factory=dict)  # fingerprint -> upstream name

    def repro_variables(self) -> dict[str, str]:
        """What a repro names by shell variable: each mock's URL (as `gwconf upstreams` prints it)
        and each scrubbed provider key, so a curl names no dead port and needs no stored key."""
        def var(name: str, kind: str) -> str:
            return f"GWCONF_{name.upper().replace('-', '_')}_{kind}"
        return ({url: var(name, "URL") for name, url in self.upstream_urls.items()}
                | {f"[REDACTED {mark}]": var(name, "KEY") for mark, name in self.provider_key_names.items()})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunFacts:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
