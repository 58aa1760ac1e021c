"""The run environment a scenario drives in, and where it reads the mocks' captures."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from harness.config._profile import GatewayProfile, load_profile
from harness.config._redact import fingerprint
from harness.errors import UpstreamUnavailable
from harness.records._capture import CapturedRequest
from harness.records._recording import RunFacts
from harness.upstream._loopback import loopback_client

ENV_VAR = "GWCONF_RUN_ENV"


class CaptureSource(Protocol):
    def for_token(self, token: str) -> list[CapturedRequest]: ...

    def all(self) -> list[CapturedRequest]: ...


@dataclass
class HttpCaptures:
    """Captures read over HTTP from the mocks: how xdist workers see the controller's upstreams."""

    urls: dict[str, str]

    def for_token(self, token: str) -> list[CapturedRequest]:
        return self.fetch({"run": token})

    def all(self) -> list[CapturedRequest]:
        return self.fetch({})

    def fetch(self, params: dict[str, str]) -> list[CapturedRequest]:
        records: list[CapturedRequest] = []
        for url in self.urls.values():
            try:
                response = loopback_client().get(f"{url}/__gwconf/captures", params=params)
            except httpx.HTTPError as exc:
                raise UpstreamUnavailable(f"{url}: capture log unreachable ({exc})") from exc
            records += [CapturedRequest.from_dict(r) for r in response.json()]
        return sorted(records, key=lambda r: r.seq)


@dataclass
class RunEnv:
    """Everything about one run that a check may use; serialisable for xdist workers."""

    profile_path: str
    gateway_url: str
    api_key: str
    api_key_b: str | None
    upstream_urls: dict[str, str]
    provider_keys: dict[str, str]
    files_dir: str
    headers: dict[str, str] = field(default_factory=dict)
    route_headers: dict[str, dict[str, str]] = field(default_factory=dict)
    gateway_started: bool = False  # gwconf started the gateway (so it set its proxy variables)
    egress_url: str = ""  # the recording proxy gateways gwconf starts are pointed at
    out_dir: str = ""  # where the run keeps its recordings ("" keeps them in memory only)
    profile_arg: str = ""  # the --gateway argument as typed

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RunEnv:
        return cls(**json.loads(text))

    @classmethod
    def from_environ(cls) -> RunEnv | None:
        text = os.environ.get(ENV_VAR)
        return cls.from_json(text) if text else None

    @property
    def secrets(self) -> tuple[str, ...]:
        keys = [self.api_key, self.api_key_b or "", *self.provider_keys.values()]
        return tuple(k for k in keys if k)

    def facts(self, profile: GatewayProfile) -> RunFacts:
        """What the checks may know of this run: no key, only the keys' fingerprints."""
        return RunFacts(
            profile_path=self.profile_path, profile_arg=self.profile_arg or self.profile_path,
            timeouts=asdict(profile.timeouts), upstream_urls=dict(self.upstream_urls),
            provider_key_names={fingerprint(k): name for name, k in self.provider_keys.items() if k},
            files_dir=self.files_dir, gateway_started=self.gateway_started,
            has_second_key=bool(self.api_key_b),
            client_key_marks=[fingerprint(k) for k in (self.api_key, self.api_key_b) if k],
            provider_key_marks=[fingerprint(k) for k in self.provider_keys.values() if k])


def load_env_profile(env: RunEnv) -> GatewayProfile:
    return load_profile(Path(env.profile_path))
