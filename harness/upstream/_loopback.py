"""One HTTP client for the harness's own loopback services (mocks, egress sink).

`httpx.get` builds a new client, and with it an SSL context, on every call: tens of
milliseconds each, paid several times per check. A shared client keeps connections alive.
"""

from __future__ import annotations

import threading

import httpx

from harness.gateway import _seam as seam

_local = threading.local()


def loopback_client() -> httpx.Client:
    """A client for this thread; proxies from the environment never apply to loopback. While an
    in-process run is open, the seam's client (its mocks and egress sink have no sockets)."""
    opened = seam.active()
    if opened is not None:
        return opened.client
    client = getattr(_local, "client", None)
    if client is None:
        client = httpx.Client(timeout=5.0, trust_env=False)
        _local.client = client
    return client
