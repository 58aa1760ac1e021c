"""The intercepting proxy of as-deployed runs: real hosts reach their mocks, others are refused."""

from __future__ import annotations

import json
import ssl
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.errors import ConfigError
from harness.gateway._session import open_session
from harness.paths import CASSETTES_DIR
from harness.upstream._egress import RunningSink, fetch_attempts, start_sink
from harness.upstream._intercept import REAL_HOSTS, RunningIntercept, start_intercept
from harness.upstream.server import ThreadedServer, bind_loopback


def echo(name: str) -> Starlette:
    async def answer(request: Request) -> JSONResponse:
        return JSONResponse({"mock": name, "method": request.method, "path": request.url.path,
                             "query": request.url.query, "body": (await request.body()).decode()})

    return Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])])


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[RunningIntercept, RunningSink]]:
    mocks = {name: ThreadedServer(echo(name), bind_loopback()) for name in REAL_HOSTS}
    for server in mocks.values():
        server.start()
    sink = start_sink()
    intercept = start_intercept(sink, {n: s.url for n, s in mocks.items()}, tmp_path)
    yield intercept, sink
    intercept.stop()
    sink.stop()
    for server in mocks.values():
        server.stop()


def client(intercept: RunningIntercept, trust: bool = True) -> httpx.Client:
    verify = ssl.create_default_context(cafile=str(intercept.ca.bundle)) if trust else True
    return httpx.Client(proxy=intercept.url, verify=verify, timeout=5, trust_env=False)


@pytest.mark.parametrize("mock", sorted(REAL_HOSTS))
def test_each_real_host_reaches_its_own_mock_through_tls(proxied, mock):
    intercept, sink = proxied
    with client(intercept) as c:
        answer = c.post(f"https://{REAL_HOSTS[mock]}/api/v1/x?y=1", json={"p": "q"}).json()

    assert (answer["mock"], answer["method"], answer["path"], answer["query"]) == (mock, "POST", "/api/v1/x", "y=1")
    [crossing] = intercept.crossings
    assert (crossing.method, crossing.host, crossing.path, crossing.mock) == (
        "POST", REAL_HOSTS[mock], "/api/v1/x?y=1", mock)
    assert sink.log.since() == []


def test_the_check_token_of_a_marked_prompt_travels_with_the_crossing(proxied):
    intercept, _ = proxied
    with client(intercept) as c:
        c.post("https://api.openai.com/v1/images/generations", json={"prompt": "fox [gwconf:MAP-001:8f2c91ab]"})

    assert [c.run for c in intercept.crossings] == ["8f2c91ab"]


def test_another_host_is_refused_and_recorded_with_method_and_full_path(proxied):
    intercept, sink = proxied
    with client(intercept) as c:
        response = c.post("https://cn-hongkong.dashscope.aliyuncs.com/compatible-mode/v1/chat/completions?a=b",
                          json={})

    assert response.status_code == 403
    [attempt] = fetch_attempts(sink.url)  # the same log, and shape, MAP-011 reads
    assert (attempt.method, attempt.host, attempt.port, attempt.path) == (
        "POST", "cn-hongkong.dashscope.aliyuncs.com", 443, "/compatible-mode/v1/chat/completions?a=b")
    assert intercept.crossings == []


def test_a_real_host_on_another_port_is_not_routed(proxied):
    intercept, sink = proxied
    with client(intercept) as c:
        assert c.get("https://api.openai.com:8443/v1/models").status_code == 403
    assert [a.summary() for a in sink.log.since()] == ["GET api.openai.com:8443/v1/models"]


def test_plain_http_proxy_requests_go_to_the_sink(proxied):
    intercept, sink = proxied
    with client(intercept) as c:
        assert c.get("http://api.openai.com/v1/models").status_code == 403
    assert [a.summary() for a in sink.log.since()] == ["GET api.openai.com:80/v1/models"]


def test_a_client_that_does_not_trust_the_run_ca_is_recorded_as_a_bare_connect(proxied):
    intercept, sink = proxied
    with client(intercept, trust=False) as c, pytest.raises(httpx.ConnectError):
        c.get("https://api.replicate.com/v1/predictions")

    deadline = time.monotonic() + 3  # the proxy sees the failed handshake just after the client
    while not sink.log.since() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [a.summary() for a in sink.log.since()] == ["CONNECT api.replicate.com:443"]
    assert intercept.crossings == []


def test_an_as_deployed_gateway_gets_real_hosts_the_proxy_and_the_ca(tmp_path: Path):
    """The subprocess sees the real hosts in its placeholders, the intercepting proxy as
    HTTP(S)_PROXY, and the run CA in every variable its runtime may read."""
    dump = tmp_path / "env.json"
    script = ("import json, os, sys, http.server; names = [n for n in os.environ if 'proxy' in n.lower() "
              "or n.endswith(('_CA_BUNDLE', 'CERT_FILE', 'CA_CERTS'))]; "
              "seen = {n: os.environ[n] for n in names}; seen['argv'] = sys.argv[3:]; "
              "open(sys.argv[1], 'w').write(json.dumps(seen)); "
              "http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler, port=int(sys.argv[2]), "
              "bind='127.0.0.1')")
    profile = tmp_path / "deployed.toml"
    profile.write_text(textwrap.dedent(f"""\
        name = "deployed"
        mode = "as-deployed"
        base_url = "http://127.0.0.1:{{port}}"
        api_key_env = "GWCONF_DEPLOYED_KEY"
        generate_keys = true
        health_path = "/"
        [start]
        command = ["{{python}}", "-c", {json.dumps(script)}, "{dump}", "{{port}}",
                   "{{dashscope_url}}", "{{dashscope_intl_url}}", "{{dashscope_us_url}}", "{{openai_url}}",
                   "{{replicate_url}}"]
        cwd = "."
        [[models]]
        alias = "m"
        provider = "openai"
        upstream_model = "gpt-image-2"
        capability = "image.generate"
        """))

    with open_session(profile, CASSETTES_DIR, tmp_path / "work", environ={}) as session:
        seen = json.loads(dump.read_text())
        assert session.intercept is not None
        proxy, bundle = session.intercept.url, session.intercept.ca.bundle
        assert session.egress is not None and session.env.egress_url == session.egress.url  # MAP-011 reads it
        assert "BEGIN CERTIFICATE" in bundle.read_text()
        assert session.env.upstream_urls["openai"].startswith("http://127.0.0.1:")  # checks read the mocks

    assert seen["argv"] == ["https://dashscope.aliyuncs.com", "https://dashscope-intl.aliyuncs.com",
                            "https://dashscope-us.aliyuncs.com", "https://api.openai.com",
                            "https://api.replicate.com"]
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        assert seen[name] == proxy
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"):
        assert seen[name] == str(bundle)
    assert seen["NO_PROXY"] == "127.0.0.1,localhost,::1"


def test_an_as_deployed_profile_without_start_is_a_config_error(tmp_path: Path):
    profile = tmp_path / "p.toml"
    profile.write_text(textwrap.dedent("""\
        name = "p"
        mode = "as-deployed"
        base_url = "http://127.0.0.1:9"
        api_key_env = "GWCONF_P_KEY"
        [[models]]
        alias = "m"
        provider = "openai"
        upstream_model = "gpt-image-2"
        capability = "image.generate"
        """))
    with pytest.raises(ConfigError, match=r"p.toml: an as-deployed profile needs \[start\]"), \
            open_session(profile, CASSETTES_DIR, tmp_path / "work", environ={"GWCONF_P_KEY": "k"}):
        pass
