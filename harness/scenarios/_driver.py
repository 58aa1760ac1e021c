"""Driving a scenario: the traffic program sends, follows and records; it never judges.

A scenario function gets a Driver `s`. Each action (`s.generate`, `s.post_image`, `s.chat`,
`s.edit`, `s.request`, `s.poll`, `s.fetch`) is one named step with its own marker token, so
what reached the mocks is attributed to the step that caused it. A client-side timeout or an
unreachable gateway ends that step only: the step records it, the next step runs, and the
checks that read the step decide what it means.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.checks._checklib import carries_mark, placeholder_credential
from harness.checks._registry import Scenario
from harness.config._profile import BLACK_BOX, GatewayProfile, ModelRoute
from harness.config._redact import fingerprint, scrub_data
from harness.errors import CheckSkipped, UpstreamUnavailable
from harness.gateway import _run_budget as run_budget
from harness.gateway._env import CaptureSource, RunEnv
from harness.gateway.client import GatewayClient, GatewayTimeout, JobResult
from harness.records._capture import CapturedRequest
from harness.records._recording import Answer, Recording, Step
from harness.scenarios._sizes import cheapest_size
from harness.upstream._egress import fetch_attempts
from harness.upstream._markers import Marker, new_token

SETTLE_BOUND_SECONDS = 3.0
DEFAULT_PROMPT = "a watercolor fox in the snow"


class Driver:
    """Handed to every scenario function as `s`."""

    def __init__(self, scenario: Scenario, env: RunEnv, profile: GatewayProfile,
                 captures: CaptureSource) -> None:
        self.scenario = scenario
        self.env = env
        self.profile = profile
        self.captures = captures
        self.recording = Recording(scenario.name)
        self.current: Step | None = None
        self.client = GatewayClient(profile, env.gateway_url, env.api_key, self._exchange, env.headers,
                                    env.secrets, env.route_headers)

    def side_by_side(self, programs: list[Callable[[Driver], None]]) -> None:
        """Run independent parts of the scenario at the same time, each with a client of its own:
        parts that mostly wait (an upstream that hangs until the gateway's bound) then cost the
        longest wait, not the sum of them. Their steps are recorded in the order of `programs`.
        A black-box run takes them one after another: live providers bill and rate-limit, its
        budget goes to requests in a fixed order, and its exchanges are taped once per scenario."""
        if self.profile.mode == BLACK_BOX:
            for program in programs:
                program(self)
            return
        twins = [Driver(self.scenario, self.env, self.profile, self.captures) for _ in programs]
        with ThreadPoolExecutor(max_workers=max(len(programs), 1), thread_name_prefix="gwconf-part") as pool:
            done = [pool.submit(program, twin) for program, twin in zip(programs, twins, strict=True)]
        for twin in twins:
            twin.close()
            for step in twin.recording.steps:
                if self.recording.step(step.name) is not None:
                    raise ValueError(f"scenario {self.recording.scenario}: step {step.name!r} recorded twice")
                self.recording.steps.append(step)
            self.recording.notes.extend(n for n in twin.recording.notes if n not in self.recording.notes)
        for future in done:
            future.result()  # a part that broke breaks the scenario, as it would have in sequence

    # -- the profile ----------------------------------------------------------------------------

    def route_where(self, capability: str, predicate: Callable[[ModelRoute], bool]) -> ModelRoute | None:
        """The profile's first route of `capability` that fits, or None: the scenario then sends
        nothing for it, and the checks that need it skip (Judgement.route_where)."""
        return next((r for r in self.profile.routes_for(capability) if predicate(r)), None)

    def sized(self, alias: str, capability: str, params: dict[str, Any]) -> dict[str, Any]:
        """A size the scenario picked, in a black-box run: the cheapest the model's catalogue
        allows instead (harness/scenarios/_sizes.py), since a live provider bills by it."""
        if self.profile.mode != BLACK_BOX or "size" not in params:
            return params
        route = next((r for r in self.profile.models if r.alias == alias and r.capability == capability), None)
        size = None if route is None else cheapest_size(Path(self.env.files_dir).parent, route.provider,
                                                        route.upstream_model, capability)
        if size is None or size == params["size"]:
            return params
        note = f"{alias}: size {params['size']} asked as {size}, the cheapest {route.upstream_model} allows (black box)"
        if note not in self.recording.notes:
            self.recording.notes.append(note)
        return {**params, "size": size}

    # -- steps --------------------------------------------------------------------------------

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """One named action; its exchanges and upstream requests are recorded under its name."""
        if self.recording.step(name) is not None:
            raise ValueError(f"scenario {self.recording.scenario}: step {name!r} recorded twice")
        step = Step(name, new_token())
        self.recording.steps.append(step)
        self.current = step
        self.client.unfollowed_work = False
        try:
            yield step
        except GatewayTimeout as exc:
            step.timeout = str(exc)
            # The timeout rule: a gateway that still answers a liveness probe chose not to answer
            # in time; one that does not has stopped answering (harness/gateway/_run_budget.py).
            step.stopped = run_budget.stopped_verdict(name, step.timeout, self.client.still_answering())
        except run_budget.GatewayStopped as exc:  # the breaker is open: nothing was sent
            step.stopped = str(exc)
            self.note_breaker(exc.evidence)
        except UpstreamUnavailable as exc:
            step.error = str(exc)
        except CheckSkipped as exc:  # the live budget refused the request: nothing was sent
            step.skipped = str(exc)
        finally:
            self.current = None
            try:
                step.upstream = self.settled(step.token) if self.client.unfollowed_work else \
                    self.captures.for_token(step.token)
            except UpstreamUnavailable as exc:
                step.error = step.error or f"captures unavailable: {exc}"

    def note_breaker(self, evidence: list[str]) -> None:
        """The first timeouts that opened the breaker, once in the recording's notes."""
        for line in evidence:
            note = f"no answer: {line}"
            if note not in self.recording.notes:
                self.recording.notes.append(note)

    def timed_out(self, text: str) -> None:
        """A step whose traffic went around the client (the fuzz campaign) got no answer at all:
        the same timeout rule applies (call inside the step)."""
        raise GatewayTimeout(text)

    def guard(self) -> None:
        """Raise inside a step whose traffic goes around the client once the breaker is open."""
        stopped = run_budget.breaker_open()
        if stopped is not None:
            raise stopped

    def _exchange(self, exchange: Any) -> None:
        if self.current is not None:
            self.current.exchanges.append(exchange)

    def marker(self, play: str | None = None, at: str | None = None) -> str:
        """This step's marker; `play` names the cassette the mocks answer with, `at` limits it
        to one provider (how a fallback chain is driven). A black box has no mock to play
        anything: the marker names the step only, and the provider answers as it always does."""
        assert self.current is not None, "a marker belongs to a step"
        if self.profile.mode == BLACK_BOX:
            play = at = None
        return str(Marker(self.recording.scenario, self.current.token, play, at))

    def prompt(self, text: str = DEFAULT_PROMPT, play: str | None = None, at: str | None = None) -> str:
        return f"{text} [{self.marker(play, at)}]"

    def settled(self, token: str) -> list[CapturedRequest]:
        """Captures once they stop growing: the gateway accepted work the client cannot follow."""
        deadline = time.monotonic() + SETTLE_BOUND_SECONDS
        records = self.captures.for_token(token)
        quiet_reads = 0
        while quiet_reads < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
            again = self.captures.for_token(token)
            quiet_reads = quiet_reads + 1 if len(again) == len(records) else 0
            records = again
        return records

    # -- actions ------------------------------------------------------------------------------

    def generate(self, name: str, alias: str, *, text: str = DEFAULT_PROMPT, play: str | None = None,
                 at: str | None = None, key: str | None = None, **params: Any) -> JobResult | None:
        """An image request followed through the profile's dialect to its end."""
        with self.step(name) as step:
            result = self.client.generate_image(alias, self.prompt(text, play, at), key=key,
                                                **self.sized(alias, "image.generate", params))
            step.value["job"] = result.to_dict()
            return result
        return None

    def video(self, name: str, alias: str, *, text: str = DEFAULT_PROMPT, play: str | None = None,
              key: str | None = None, **params: Any) -> JobResult | None:
        """A video request followed through the dialect's video jobs to their end."""
        with self.step(name) as step:
            result = self.client.generate_video(alias, self.prompt(text, play), key=key,
                                                **self.sized(alias, "video.generate", params))
            step.value["job"] = result.to_dict()
            return result
        return None

    def video_content(self, name: str, job_id: str) -> None:
        """Read a finished video's bytes through the dialect; keep their size and digest."""
        with self.step(name) as step:
            response = self.client.video_content(job_id)
            self._keep_answer(step)
            step.value["fetched"] = None if response.status_code != 200 else {
                "size": len(response.content), "sha256": hashlib.sha256(response.content).hexdigest()}

    def cancel(self, name: str, job_id: str, *, job_step: str) -> Answer | None:
        """Cancel a job through the dialect's cancel route. The mocks attribute what the gateway
        does for a job to the step that created it, so this step also keeps those requests of
        `job_step` that came after that step ended (the upstream cancel among them)."""
        job = self.recording.step(job_step)
        known = {r.seq for r in job.upstream} if job is not None else set()
        answer = None
        with self.step(name) as step:
            self.client.cancel(job_id)
            answer = self._keep_answer(step)
        if job is not None:
            try:
                step.upstream += [r for r in self.captures.for_token(job.token) if r.seq not in known]
            except UpstreamUnavailable as exc:
                step.error = step.error or f"captures unavailable: {exc}"
        return answer

    def generate_twice(self, name: str, alias: str, *, headers: dict[str, str] | None = None,
                       **params: Any) -> list[JobResult]:
        """The same image request sent twice in one step (same body and marker, same key), each
        followed to its end; `headers` go with both (an idempotency key, say)."""
        with self.step(name) as step:
            prompt = self.prompt()
            saved = dict(self.client.headers)
            self.client.headers.update(headers or {})
            try:
                sized = self.sized(alias, "image.generate", params)
                results = [self.client.generate_image(alias, prompt, **sized) for _ in range(2)]
            finally:
                self.client.headers = saved
            step.value["jobs"] = [r.to_dict() for r in results]
            return results
        return []

    def post_image(self, name: str, alias: str, *, play: str | None = None, at: str | None = None,
                   **params: Any) -> Answer | None:
        """One plain image request, not followed: where error surfacing is judged."""
        with self.step(name) as step:
            self.client.post_image(alias, self.prompt(play=play, at=at), **self.sized(alias, "image.generate", params))
            return self._keep_answer(step)
        return None

    def edit(self, name: str, alias: str, text: str, file: str, **params: Any) -> JobResult | None:
        """An edit with one of the provider files as the image."""
        with self.step(name) as step:
            image = (Path(self.env.files_dir) / file).read_bytes()
            result = self.client.edit_image(alias, self.prompt(text), image, filename=file,
                                            **self.sized(alias, "image.edit", params))
            step.value["job"] = result.to_dict()
            return result
        return None

    def chat(self, name: str, alias: str, text: str, *, marked: bool = True, **extra: Any) -> Answer | None:
        """A chat request; `text` gets the step's marker appended (bracketed unless marked=False)."""
        with self.step(name) as step:
            content = self.prompt(text) if marked else f"{text} {self.marker()}"
            self.client.chat(alias, content, **extra)
            return self._keep_answer(step)
        return None

    def request(self, name: str, method: str, path: str, *, alias: str | None = None,
                key: str | None = None, body: dict[str, Any] | None = None, play: str | None = None,
                headers: dict[str, str] | None = None, **kwargs: Any) -> Answer | None:
        """A raw request; a `body` gets a marked `prompt`, `alias` its per-alias headers. `key=""`
        sends no Authorization header; `headers` may set one as it is (a malformed one)."""
        with self.step(name) as step:
            if body is not None:
                body = {**body, "prompt": self.prompt(play=play)}
            self.client.request(method, path, key=key, json=body,
                                headers={**self.client.model_headers(alias), **(headers or {})}, **kwargs)
            return self._keep_answer(step)
        return None

    def poll(self, name: str, job_id: str, *, key: str | None = None) -> Answer | None:
        """Read a job once more; the value keeps the canonical status the dialect maps it to."""
        with self.step(name) as step:
            self.client.poll(job_id, key=key)
            answer = self._keep_answer(step)
            body = self._json(answer)
            step.value["status"] = self.client.canonical(body) if isinstance(body, dict) else "unknown"
            return answer
        return None

    def fetch(self, name: str, item: dict[str, Any]) -> None:
        """Download an image URL the gateway handed out; keep its size and digest."""
        with self.step(name) as step:
            url = item.get("url")
            data = self.client.fetch(url) if isinstance(url, str) and url else None
            step.value["fetched"] = None if data is None else {
                "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    def keep_stray(self) -> None:
        """Keep the upstream requests of the run so far that are not this scenario's but may
        matter to its checks: every unmarked one (side calls), and every one of another scenario
        that carries a client key's fingerprint or a placeholder credential (a key travelled
        where it must not, or none did)."""
        own = {step.token for step in self.recording.steps}
        marks = [fingerprint(k) for k in (self.env.api_key, self.env.api_key_b) if k]
        self.recording.stray = [r for r in self.captures.all() if r.token not in own and (
            r.token is None or carries_mark(r, marks) or placeholder_credential(r) is not None)]

    def _keep_answer(self, step: Step) -> Answer | None:
        answer = self.client.last_answer
        step.value["answer"] = None if answer is None else answer.__dict__.copy()
        return answer

    @staticmethod
    def _json(answer: Answer | None) -> Any:
        try:
            return answer.json() if answer is not None else None
        except ValueError:
            return None

    def close(self) -> None:
        self.client.close()


def drive(scenario: Scenario, env: RunEnv, profile: GatewayProfile, captures: CaptureSource,
          checks: int = 1) -> Recording:
    """Run one scenario and return its recording, scrubbed of every secret of the run.

    What the checks judge is this scrubbed recording, exactly as it is stored: a re-judge from
    disk sees the same data the run saw."""
    driver = Driver(scenario, env, profile, captures)
    started_wall, started = time.time(), time.monotonic()
    try:
        spent = run_budget.start_scenario(checks)  # the scenario's bound: its `checks` checks' bounds
        if spent:
            raise run_budget.BudgetSpent(spent)
        scenario.func(driver)
    except UpstreamUnavailable as exc:
        driver.recording.error = f"harness could not decide: {exc}"
    except CheckSkipped as exc:
        driver.recording.skipped = str(exc)
    except Exception as exc:  # a harness bug must not stop the run; it shows as an error
        driver.recording.error = f"harness error in scenario {scenario.name}: {type(exc).__name__}: {exc}"
    finally:
        driver.close()
    if env.egress_url:
        try:
            driver.recording.egress = fetch_attempts(env.egress_url, started_wall)
        except UpstreamUnavailable as exc:
            driver.recording.notes.append(f"egress log unavailable: {exc}")
    driver.recording.duration = round(time.monotonic() - started, 4)
    return scrubbed(driver.recording, env.secrets)


def scrubbed(recording: Recording, secrets: tuple[str, ...]) -> Recording:
    data = scrub_data(recording.to_dict(), secrets)
    assert isinstance(data, dict)
    return Recording.from_dict(data)
