"""Live exchanges of a black-box run, kept as scrubbed vcrpy cassettes.

Every request a check sends to a gateway gwconf does not host, and its answer, is stored in
vcrpy's cassette format (through vcrpy's own Request and serializer), one cassette per check
client, named after the check's marker. Secrets never reach the file: secret headers become
`[REDACTED sha256:...]` fingerprints and the known keys and every key-shaped string are scrubbed
from URLs and bodies (binary bodies byte for byte, through latin-1, so images stay intact).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.config._redact import redact_headers, scrub
from harness.upstream._markers import find_marker


def scrub_bytes(body: bytes, secrets: tuple[str, ...]) -> str | bytes:
    """Text stays text; anything else is scrubbed byte for byte and kept as bytes."""
    try:
        return scrub(body.decode("utf-8"), secrets)
    except UnicodeDecodeError:
        return scrub(body.decode("latin-1"), secrets).encode("latin-1")


@dataclass
class LiveTape:
    directory: Path
    secrets: tuple[str, ...]
    source: str  # the gateway's base URL, for the provenance note
    requests: list[Any] = field(default_factory=list)  # vcr.request.Request
    responses: list[dict[str, Any]] = field(default_factory=list)
    name: str | None = None

    def add(self, request: httpx.Request, response: httpx.Response) -> None:
        body = request.read()
        if self.name is None:
            marker = find_marker(body.decode("latin-1"))
            self.name = f"{marker.check_id}-{marker.token}" if marker else None
        headers = redact_headers(request.headers.items(), self.secrets)
        # vcrpy on use: importing it imports every HTTP library it can patch (harness/config/_cassette.py).
        from vcr.request import Request as VcrRequest

        self.requests.append(VcrRequest(request.method, scrub(str(request.url), self.secrets),
                                        scrub_bytes(body, self.secrets), headers))
        answer_headers: dict[str, list[str]] = {}
        for key, value in redact_headers(response.headers.multi_items(), self.secrets).items():
            answer_headers.setdefault(key, []).append(value)
        self.responses.append({
            "status": {"code": response.status_code, "message": response.reason_phrase},
            "headers": answer_headers,
            "body": {"string": scrub_bytes(response.content, self.secrets)},
        })

    def write(self) -> Path | None:
        """The cassette file, or None when nothing was exchanged."""
        if not self.requests:
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = self.name or f"unmarked-{time.time_ns()}"
        path = self.directory / f"{stem}.yaml"
        metadata = {"gwconf": {"kind": "gateway-exchanges", "provenance": {
            "kind": "live-recording", "source": self.source,
            "note": f"client exchanges with a black-box gateway, recorded {time.strftime('%Y-%m-%d')} "
                    "by gwconf run; secrets scrubbed"}}}
        from vcr.serialize import serialize
        from vcr.serializers import yamlserializer

        text = serialize({"requests": self.requests, "responses": self.responses, "metadata": metadata},
                         yamlserializer)
        path.write_text(text, encoding="utf-8")
        return path
