"""`gwconf record`: the explicit, opt-in live recording of one provider scenario into a cassette.

Nothing else in gwconf talks to a real provider. The key comes from an environment variable,
vcrpy records through its own httpx patch, and every secret is scrubbed before the cassette is
written: Authorization and friends are dropped from the stored request, and known keys and
key-shaped strings are removed from bodies and query strings. Result images are downloaded
into cassettes/files/ and their URLs rewritten to the mock's /files route, so the cassette
replays offline like every other.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import vcr
import yaml
from vcr.serializers import yamlserializer

from harness.config._cassette import FILES_HOST, load_cassette
from harness.config._redact import SECRET_HEADERS, scrub
from harness.errors import ConfigError

PUBLIC_BASES = {
    "dashscope": "https://dashscope.aliyuncs.com",
    "openai": "https://api.openai.com",
    "replicate": "https://api.replicate.com",
}
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN", "succeeded", "failed", "canceled", "aborted",
            "completed"}
IMAGE_URL = re.compile(r'https?://[^"\s]+?\.(?:png|jpe?g|webp)(?:\?[^"\s]*)?', re.I)
MAX_POLLS = 120


@dataclass
class Recording:
    provider: str
    scenario: str
    capability: str
    models: list[str]
    method: str
    path: str
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    poll: bool = False
    poll_interval: float = 2.0
    base_url: str | None = None


def task_of(provider: str, answer: dict[str, Any]) -> tuple[str | None, str | None]:
    """The task id and poll path of an async submit's answer, or (None, None)."""
    if provider == "dashscope":
        task_id = answer.get("output", {}).get("task_id")
        return task_id, f"/api/v1/tasks/{task_id}" if task_id else None
    if provider == "replicate" and answer.get("id"):
        return answer["id"], f"/v1/predictions/{answer['id']}"
    if provider == "openai" and str(answer.get("id", "")).startswith("video_"):
        return answer["id"], f"/v1/videos/{answer['id']}"
    return None, None


def status_of(answer: dict[str, Any]) -> str | None:
    return answer.get("output", {}).get("task_status") or answer.get("status")


def record(spec: Recording, key: str, out: Path, files_dir: Path, source: str) -> Path:
    """Make the calls, write the scrubbed cassette to `out`, return it (validated by loading)."""
    if out.exists():
        raise ConfigError(f"{out}: exists already; remove it or pick another scenario name")
    base = (spec.base_url or PUBLIC_BASES[spec.provider]).rstrip("/")
    secrets = (key,)

    def clean_request(request: Any) -> Any:
        request.uri = scrub(request.uri, secrets)
        if request.body:
            text = request.body.decode() if isinstance(request.body, bytes) else request.body
            request.body = scrub(text, secrets).encode()
        return request

    def clean_response(response: dict[str, Any]) -> dict[str, Any]:
        response["headers"] = {k: v for k, v in response["headers"].items() if k.lower() not in SECRET_HEADERS}
        body = response["body"].get("string", b"")
        text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
        response["body"]["string"] = scrub(text, secrets).encode()
        return response

    recorder = vcr.VCR(
        record_mode="all",
        filter_headers=[(h, None) for h in SECRET_HEADERS],
        before_record_request=clean_request,
        before_record_response=clean_response,
        decode_compressed_response=True,
    )
    headers = {"Authorization": f"Bearer {key}", **spec.headers}
    metadata = {
        "provider": spec.provider, "scenario": spec.scenario, "capability": spec.capability,
        "models": spec.models, "default": False,
        "provenance": {"kind": "live-recording", "source": source,
                       "note": f"recorded {time.strftime('%Y-%m-%d')} with gwconf record from {base}"},
    }
    try:
        record_calls(spec, base, headers, key, metadata, recorder, out)
    except (httpx.HTTPError, ValueError) as exc:
        out.unlink(missing_ok=True)
        raise ConfigError(f"{base}: recording failed ({type(exc).__name__}: {exc})") from exc
    localize_images(out, files_dir, spec.scenario)
    load_cassette(out)
    return out


def record_calls(spec: Recording, base: str, headers: dict[str, str], key: str, metadata: dict[str, Any],
                 recorder: vcr.VCR, out: Path) -> None:
    with recorder.use_cassette(str(out)) as cassette, httpx.Client(timeout=60) as http:
        answer = http.request(spec.method, base + spec.path, json=spec.body, headers=headers)
        task_id, poll_path = task_of(spec.provider, answer.json()) if answer.status_code < 400 else (None, None)
        if spec.poll and poll_path:
            metadata["ids"] = {"task_id": task_id}
            for _ in range(MAX_POLLS):
                polled = http.get(base + poll_path, headers={"Authorization": f"Bearer {key}"}).json()
                if status_of(polled) in TERMINAL:
                    break
                time.sleep(spec.poll_interval)
        cassette.get_metadata("gwconf", metadata)


def localize_images(cassette_path: Path, files_dir: Path, scenario: str) -> None:
    """Download each result image into files_dir and point the cassette at the mock's copy."""
    document = yamlserializer.deserialize(cassette_path.read_text(encoding="utf-8"))
    seen: dict[str, str] = {}
    for interaction in document["interactions"]:
        body = interaction["response"]["body"]
        text = body["string"] if isinstance(body["string"], str) else body["string"].decode()
        for url in IMAGE_URL.findall(text):
            if url.startswith(FILES_HOST) or url in seen:
                continue
            name = f"{scenario}-{len(seen) + 1}{Path(url.split('?')[0]).suffix.lower()}"
            files_dir.mkdir(parents=True, exist_ok=True)
            (files_dir / name).write_bytes(httpx.get(url, timeout=60).content)
            seen[url] = f"{FILES_HOST}/files/{name}"
        for url, local in seen.items():
            text = text.replace(url, local).replace(json.dumps(url)[1:-1], local)
        body["string"] = text
    cassette_path.write_text(yaml.dump(document, Dumper=yaml.SafeDumper, allow_unicode=True, sort_keys=False),
                             encoding="utf-8")
