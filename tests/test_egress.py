"""Egress capture: the recording proxy every gateway gwconf starts is pointed at."""

from __future__ import annotations

import json
import socket
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.checks._registry import load_suites
from harness.config._profile import Timeouts
from harness.gateway._session import open_session
from harness.paths import CASSETTES_DIR, GATEWAYS_DIR, SUITES_DIR
from harness.runner._inprocess import run_in_process
from harness.upstream._egress import (
    MAX_ATTEMPTS,
    EgressAttempt,
    EgressLog,
    RunningSink,
    fetch_attempts,
    parse_target,
    start_sink,
)
from tests.mutants import MUTANTS

FAST = Timeouts(request=4, job=3, poll_interval=0.02, startup=10)


@pytest.fixture
def sink() -> Iterator[RunningSink]:
    running = start_sink()
    yield running
    running.stop()


def raw_request(url: str, head: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(head)
        return conn.recv(4096)


def test_connect_is_recorded_with_host_and_port_and_refused(sink):
    answer = raw_request(sink.url, b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n")

    assert answer.startswith(b"HTTP/1.1 403")
    [attempt] = sink.log.since()
    assert (attempt.method, attempt.host, attempt.port, attempt.path) == ("CONNECT", "api.openai.com", 443, None)


def test_https_through_the_sink_never_gets_a_tunnel(sink):
    with httpx.Client(proxy=sink.url, timeout=5) as client, pytest.raises(httpx.ProxyError):
        client.get("https://dashscope-intl.aliyuncs.com/api/v1/tasks/x")
    assert [a.target for a in sink.log.since()] == ["dashscope-intl.aliyuncs.com:443"]


def test_absolute_uri_request_is_recorded_with_its_path(sink):
    with httpx.Client(proxy=sink.url, timeout=5) as client:
        response = client.post("http://api.replicate.com:8080/v1/predictions?x=1", json={"input": {}})

    assert response.status_code == 403
    [attempt] = sink.log.since()
    assert (attempt.method, attempt.host, attempt.port, attempt.path) == (
        "POST", "api.replicate.com", 8080, "/v1/predictions")


def test_log_is_served_to_direct_calls_and_filtered_by_time(sink):
    raw_request(sink.url, b"CONNECT old.example:443 HTTP/1.1\r\nHost: old.example:443\r\n\r\n")
    cut = time.time()
    raw_request(sink.url, b"GET http://new.example/p HTTP/1.1\r\nHost: new.example\r\n\r\n")

    assert [a.host for a in fetch_attempts(sink.url)] == ["old.example", "new.example"]
    assert [a.summary() for a in fetch_attempts(sink.url, cut)] == ["GET new.example:80/p"]
    assert len(sink.log.since()) == 2  # asking for the log is not an attempt


def test_parse_target_reads_every_proxy_form():
    assert parse_target("CONNECT", "[2001:db8::1]:8443", "").target == "2001:db8::1:8443"
    assert parse_target("GET", "https://h.example/a/b", "").port == 443
    assert parse_target("GET", "/plain", "h.example:81").summary() == "GET h.example:81/plain"


def test_log_is_bounded():
    log = EgressLog()
    for i in range(MAX_ATTEMPTS + 5):
        log.append(EgressAttempt("CONNECT", f"h{i}.example", 443, time=float(i)))

    assert len(log.since()) == MAX_ATTEMPTS
    assert log.dropped == 5
    assert log.since()[0].host == "h5.example"


def test_gateway_calling_a_public_host_fails_map_011_with_the_host_in_the_evidence():
    mutant, expected = MUTANTS["calls-public-host"]
    checks = [load_suites(SUITES_DIR)[i] for i in ("MAP-005", "MAP-011")]

    outcomes = {o.check_id: o for o in run_in_process(GATEWAYS_DIR / "reference.toml", mutant.factory(), checks, FAST)}

    assert expected == {"MAP-011"}
    assert outcomes["MAP-005"].outcome == "pass"  # the client sees nothing wrong
    caught = outcomes["MAP-011"]
    assert caught.outcome == "fail"
    assert "the gateway tried to reach api.openai.com instead of the configured upstream" in caught.message
    assert "CONNECT api.openai.com:443" in caught.message
    assert any("api.openai.com:443" in note for note in caught.evidence.notes)


def test_a_gateway_gwconf_starts_gets_the_sink_as_its_proxy(tmp_path: Path):
    """The subprocess gets HTTP(S)_PROXY (both cases) and NO_PROXY for loopback."""
    dump = tmp_path / "env.json"
    script = ("import json, os, sys, http.server; names = [n for n in os.environ if 'proxy' in n.lower()]; "
              "open(sys.argv[1], 'w').write(json.dumps({n: os.environ[n] for n in names})); "
              "http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler, port=int(sys.argv[2]), "
              "bind='127.0.0.1')")
    profile = tmp_path / "envdump.toml"
    profile.write_text(textwrap.dedent(f"""\
        name = "envdump"
        base_url = "http://127.0.0.1:{{port}}"
        api_key_env = "GWCONF_ENVDUMP_KEY"
        generate_keys = true
        health_path = "/"
        [start]
        command = ["{{python}}", "-c", {json.dumps(script)}, "{dump}", "{{port}}"]
        cwd = "."
        [[models]]
        alias = "m"
        provider = "openai"
        upstream_model = "gpt-image-1"
        capability = "image.generate"
        """))

    with open_session(profile, CASSETTES_DIR, tmp_path / "work", environ={}) as session:
        seen = json.loads(dump.read_text())
        sink_url = session.env.egress_url

    assert sink_url.startswith("http://127.0.0.1:")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        assert seen[name] == sink_url
    assert seen["NO_PROXY"] == seen["no_proxy"] == "127.0.0.1,localhost,::1"
