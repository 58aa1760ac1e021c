"""The in-process seam: a run of the catalogue with no socket, and what it plays for the sockets."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from harness.checks._registry import load_suites
from harness.gateway._seam import Router, hosted_origin, open_seam
from harness.paths import SUITES_DIR
from harness.reference import build_app
from harness.runner._inprocess import run_in_process
from harness.upstream.server import ThreadedServer, bind_loopback
from tests.test_mutation import FAST, PROFILE, TEMPLATE

# A hang, a dropped connection, a public host through the egress proxy, a fuzz campaign, a job.
CHECKS = ("ERR-007", "ERR-008", "MAP-011", "FUZZ-002", "ASYNC-002")


def test_an_in_process_run_opens_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []

    def refuse(self: socket.socket, address: object) -> None:
        opened.append(str(address))
        raise OSError("the seam must not open sockets")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "bind", refuse)
    catalogue = load_suites(SUITES_DIR)
    outcomes = run_in_process(PROFILE, lambda config: build_app(config).app, [catalogue[c] for c in CHECKS],
                              FAST, template_vars=TEMPLATE)
    assert {o.check_id: o.outcome for o in outcomes} == dict.fromkeys(CHECKS, "pass"), [o.message for o in outcomes]
    assert opened == []


async def hang(scope: dict, receive: object, send: object) -> None:
    await asyncio.sleep(30)


async def short_body(scope: dict, receive: object, send: object) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
    await send({"type": "http.response.body", "body": b"{}"})


def test_the_router_plays_a_read_timeout_and_a_dropped_connection() -> None:
    apps = {hosted_origin("hang"): hang, hosted_origin("short"): short_body}
    with open_seam(apps) as seam:
        with pytest.raises(httpx.ReadTimeout):
            seam.client.get(hosted_origin("hang") + "/", timeout=0.1)
        with pytest.raises(httpx.RemoteProtocolError):
            seam.client.get(hosted_origin("short") + "/")
        with pytest.raises(httpx.ConnectError):
            seam.client.get("http://nowhere.example/")


def test_other_hosts_reach_the_egress_proxy_as_a_proxy_would_see_them() -> None:
    seen: list[tuple[str, str]] = []

    async def proxy(scope: dict, receive: object, send: object) -> None:
        seen.append((scope["method"], scope["path"]))
        await send({"type": "http.response.start", "status": 403, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    with open_seam({}, egress=proxy) as seam:
        assert seam.client.get("http://api.example.com/v1/x").status_code == 403
        with pytest.raises(httpx.ProxyError):
            seam.client.get("https://api.example.com/v1/x")
    assert seen == [("GET", "http://api.example.com:80/v1/x"), ("CONNECT", "api.example.com:443")]


def test_only_one_seam_at_a_time() -> None:
    with open_seam({}), pytest.raises(RuntimeError), open_seam({}):
        pass


def test_mocks_serve_on_httptools_and_uvloop() -> None:
    server = ThreadedServer(Router({}), bind_loopback())
    server.start()
    try:
        assert server.server.config.http_protocol_class.__name__ == "HttpToolsProtocol"
        assert "uvloop" in server.server.config.get_loop_factory().__module__
    finally:
        server.stop()
