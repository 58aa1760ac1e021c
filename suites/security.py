"""SEC: tenants stay apart, client keys stay at the gateway, job ids cannot be guessed."""

from __future__ import annotations

import itertools
import math

from harness.api import (
    CLIENT,
    MUST,
    SHOULD,
    SPEC_OWASP_API1,
    SPEC_OWASP_AUTH,
    CheckSkipped,
    Driver,
    Judgement,
    alias_step,
    carries_mark,
    check,
    is_dashscope_task_image,
    json_object,
    scenario,
    short,
)

SUBMITS = 4


def task_alias(t: Judgement) -> str:
    return t.route_where("image.generate", is_dashscope_task_image, "a DashScope async-task model").alias


@scenario("job-ids")
def submit_four_tasks(s: Driver) -> None:
    """Four raw submits of the DashScope async-task alias, for the job ids they answer with."""
    route = s.route_where("image.generate", is_dashscope_task_image)
    if route is None:
        return
    for n in range(1, SUBMITS + 1):
        s.request(f"submit {n}", "POST", "/v1/images/generations", alias=route.alias, body={"model": route.alias},
                  play="image-async", params=dict(s.client.dialect.submit_query),
                  headers=dict(s.client.dialect.submit_headers))


@check("SEC-001", MUST, needs="two-keys", spec=SPEC_OWASP_API1, scenario="task-succeeds", observes=CLIENT)
def job_is_invisible_to_other_keys(t: Judgement) -> None:
    """A job created with key A is not visible with key B (404 or 403)."""
    if not t.profile.dialect.is_async:
        raise CheckSkipped("the profile's dialect is sync: the gateway keeps no jobs to isolate")
    task_alias(t)
    result = t.job("job", bounded=True)
    t.expect(result.job_id, "The submit must return a job id.", "a job id", short(result.body))
    other = t.answer("read with key B")
    t.expect(other.status_code in (403, 404),
             "Another tenant's key must not read the job.", "404 or 403 for key B",
             f"{other.status_code} {short(other.text)}")


@check("SEC-002", MUST, needs="any", spec=SPEC_OWASP_AUTH, scenario="every-alias")
def client_key_is_not_forwarded(t: Judgement) -> None:
    """The client's key is never forwarded to a provider."""
    for route in t.profile.models:
        if route.capability in ("image.generate", "chat"):
            t.step(alias_step(route))
    t.expect(t.upstream(), "The requests must reach the providers for the check to see what travels.",
             "upstream requests", "no upstream request")
    # Every upstream request of the scenario, and those of the run so far the scenario kept
    # (unmarked side calls, other scenarios' requests carrying a client key): they count too.
    marks = t.facts.client_key_marks
    leaked = [f"{r.provider} {r.method} {r.path}" for r in [*t.upstream(), *t.recording.stray]
              if carries_mark(r, marks)]
    t.expect(not leaked, "The client's key must stay at the gateway.", "no client key upstream",
             "client key seen in " + ", ".join(sorted(set(leaked))))


def tails(ids: list[str]) -> list[str]:
    """Each id without the prefix all of them share (`img_`, `job-`, ...)."""
    prefix = 0
    while all(len(i) > prefix for i in ids) and len({i[prefix] for i in ids}) == 1:
        prefix += 1
    return [i[prefix:] for i in ids]


def random_bits(ids: list[str]) -> float:
    """A rough upper bound on the random bits in each id: length times the alphabet's bits."""
    parts = tails(ids)
    alphabet = set("".join(parts))
    size = 10 if alphabet <= set("0123456789") else 16 if alphabet <= set("0123456789abcdef") else (
        36 if alphabet <= set("0123456789abcdefghijklmnopqrstuvwxyz") else 64)
    return min(len(part) for part in parts) * math.log2(size)


def looks_sequential(ids: list[str]) -> bool:
    """Ids that differ only in a counter: the varying parts are numbers with one small step."""
    parts = tails(ids)
    if not all(p.isdigit() for p in parts):
        return False
    numbers = [int(p) for p in parts]
    steps = {b - a for a, b in itertools.pairwise(numbers)}
    return len(steps) == 1 and 0 < abs(next(iter(steps))) < 1000


@check("SEC-003", SHOULD, needs="async", spec=SPEC_OWASP_API1, scenario="job-ids", observes=CLIENT)
def job_ids_are_not_guessable(t: Judgement) -> None:
    """Job ids are not sequential and carry at least 64 bits of randomness."""
    task_alias(t)
    ids = []
    for n in range(1, SUBMITS + 1):
        response = t.answer(f"submit {n}")
        job_id = json_object(response).get(t.profile.dialect.id_field) if response.status_code < 300 else None
        if isinstance(job_id, str):
            ids.append(job_id)
    t.expect(len(ids) == SUBMITS, "Every submit must return a job id.", f"{SUBMITS} job ids", str(ids))
    t.expect(not looks_sequential(ids), "Job ids must not be sequential.", "unrelated ids", str(ids))
    bits = random_bits(ids)
    t.expect(bits >= 64, "Job ids must carry at least 64 bits of randomness.", ">= 64 bits",
             f"about {bits:.0f} bits in {ids}")
