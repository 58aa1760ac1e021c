"""What reached the mock upstreams: one record per request, secrets already scrubbed."""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from harness.records._plain import plain


@dataclass(slots=True)  # a load run keeps a million of them
class CapturedRequest:
    provider: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # parsed JSON, multipart fields, or text
    token: str | None = None  # the check run that caused it (from its marker)
    scenario: str | None = None
    region: str | None = None
    seq: int = 0
    answered: int | None = None  # the status the mock answered with
    task: str | None = None  # the task/prediction id this request created or polled
    notes: list[str] = field(default_factory=list)  # the mock's validation notes on this request
    flag: str | None = None  # "no-cassette": the mock had no faithful answer and said so loudly
    # What the upstream answered (scrubbed like the request): the other half of the evidence.
    answer_headers: dict[str, str] = field(default_factory=dict)
    answer_body: str = ""
    fault: str | None = None  # hang or drop: the answer above was never (fully) sent

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json_body(self) -> dict[str, Any]:
        return self.body if isinstance(self.body, dict) else {}

    @property
    def served(self) -> bool:
        """The provider answered it with a 2xx."""
        return self.answered is not None and 200 <= self.answered < 300

    def to_dict(self) -> dict[str, Any]:
        return plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CapturedRequest:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})

    def summary(self) -> str:
        model = self.json_body().get("model")
        return f"{self.provider} {self.method} {self.path}" + (f" model={model}" if model else "")


@dataclass
class CaptureLog:
    """Thread-safe, append-only log shared by every mock upstream of one run."""

    records: list[CapturedRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _seq: itertools.count = field(default_factory=itertools.count, repr=False)

    def append(self, record: CapturedRequest) -> CapturedRequest:
        with self._lock:
            record.seq = next(self._seq)
            self.records.append(record)
        return record

    def for_token(self, token: str) -> list[CapturedRequest]:
        with self._lock:
            return [r for r in self.records if r.token == token]

    def all(self) -> list[CapturedRequest]:
        with self._lock:
            return list(self.records)

    def dump_json(self) -> str:
        return json.dumps([r.to_dict() for r in self.all()], indent=2)
