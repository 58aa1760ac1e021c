"""What a check sees: the run environment, a recording client, this check's captures."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol

import httpx

from harness import budget
from harness.capture import CapturedRequest
from harness.egress import EgressAttempt, fetch_attempts
from harness.errors import CheckFailed, CheckSkipped, UpstreamUnavailable
from harness.gateway.client import GatewayClient, GatewayTimeout
from harness.loopback import loopback_client
from harness.markers import Marker, new_token
from harness.outcome import Evidence
from harness.profile import GatewayProfile, ModelRoute, load_profile
from harness.registry import Check

ENV_VAR = "GWCONF_RUN_ENV"
SETTLE_BOUND_SECONDS = 3.0


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


class CheckContext:
    """Handed to every check function as `t`."""

    def __init__(self, check: Check, env: RunEnv, profile: GatewayProfile,
                 captures: CaptureSource) -> None:
        self.check = check
        self.env = env
        self.profile = profile
        self.captures = captures
        self.token = new_token()
        self.started = time.time()
        self.evidence = Evidence()
        self.client = GatewayClient(profile, env.gateway_url, env.api_key,
                                    self.evidence.exchanges.append, env.headers, env.secrets,
                                    env.route_headers)

    # -- inputs -------------------------------------------------------------------------------

    def marker(self, scenario: str | None = None, at: str | None = None) -> str:
        return str(Marker(self.check.id, self.token, scenario, at))

    def prompt(self, text: str = "a watercolor fox in the snow", scenario: str | None = None,
               at: str | None = None) -> str:
        """A prompt carrying this check's marker; `at` limits the scenario to one provider."""
        return f"{text} [{self.marker(scenario, at)}]"

    def route(self, provider: str, capability: str, **match: str) -> ModelRoute:
        """The profile's alias for this provider and capability, or skip the check."""
        route = self.profile.route_for(provider, capability, **match)
        if route is None:
            wanted = ", ".join(f"{k}={v}" for k, v in match.items())
            raise CheckSkipped(f"profile claims no {provider} {capability} model"
                               + (f" with {wanted}" if wanted else ""))
        return route

    def route_where(self, capability: str, predicate: Any, why: str) -> ModelRoute:
        for route in self.profile.routes_for(capability):
            if predicate(route):
                return route
        raise CheckSkipped(f"profile claims no {capability} model that is {why}")

    def provider_file(self, name: str) -> bytes:
        return (Path(self.env.files_dir) / name).read_bytes()

    # -- observations -------------------------------------------------------------------------

    def upstream(self, provider: str | None = None) -> list[CapturedRequest]:
        """What reached the mock upstreams because of this check (also kept as evidence)."""
        records = self.settled() if self.client.unfollowed_work else self.captures.for_token(self.token)
        self.evidence.upstream = records
        return [r for r in records if provider is None or r.provider == provider]

    def egress(self) -> list[EgressAttempt]:
        """Attempts to reach a host other than the mocks (through the egress proxy) since this
        check started. Attribution is by time window: under xdist, concurrent checks share the
        window, so an attempt another check caused can show up here too."""
        if not self.env.egress_url:
            return []
        return fetch_attempts(self.env.egress_url, self.started)

    def settled(self) -> list[CapturedRequest]:
        """Captures once they stop growing: the gateway accepted work the client cannot follow."""
        deadline = time.monotonic() + SETTLE_BOUND_SECONDS
        records = self.captures.for_token(self.token)
        quiet_reads = 0
        while quiet_reads < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
            again = self.captures.for_token(self.token)
            quiet_reads = quiet_reads + 1 if len(again) == len(records) else 0
            records = again
        return records

    def expect_played(self, scenario: str, answer: str = "") -> None:
        """The upstream really played `scenario`: otherwise what the client saw says nothing
        about how the gateway handles it, and the check must not pass on it."""
        if any(r.scenario == scenario for r in self.upstream()):
            return
        self.fail(f"The request must reach the provider's endpoint that plays {scenario!r}; "
                  "the gateway's answer cannot show how it handles that case.",
                  f"a request the upstream answered with {scenario!r}",
                  ", ".join(f"{r.provider} {r.method} {r.path} -> {r.answered}" for r in self.upstream())
                  or "no upstream request" + (f"; the gateway answered {answer}" if answer else ""))

    # -- verdicts -----------------------------------------------------------------------------

    def expect(self, condition: object, requirement: str, expected: str = "",
               actual: str = "") -> None:
        if not condition:
            self.fail(requirement, expected, actual)

    @contextmanager
    def bounded(self, requirement: str = "The gateway must answer within the profile's bound.") -> Iterator[None]:
        """A client timeout, judged by the rule in harness/budget.py: the gateway's failure of
        `requirement` while it still answers a liveness probe, an `error` once it stopped answering."""
        try:
            yield
        except GatewayTimeout as exc:
            stopped = budget.stopped_verdict(self.check.id, self.env.gateway_url, str(exc))
            if stopped is not None:
                raise stopped from exc
            self.fail(requirement, f"an answer within {self.profile.timeouts.request:g}s", str(exc))

    def fail(self, requirement: str, expected: str = "", actual: str = "") -> NoReturn:
        self.evidence.expected = expected
        self.evidence.actual = actual
        raise CheckFailed(requirement, expected, actual)

    def note(self, text: str) -> None:
        self.evidence.notes.append(text)

    def close(self) -> None:
        self.client.close()


def load_env_profile(env: RunEnv) -> GatewayProfile:
    return load_profile(Path(env.profile_path))
