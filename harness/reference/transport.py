"""The reference gateway's upstream transport: httpx's, with a queue in front of its pool.

httpcore's pool looks through every queued request and every connection each time one finishes,
so a thousand jobs waiting for its 100 connections cost it quadratic time: under `gwconf load`
the reference spent its CPU there and finished no job. Requests wait here instead, FIFO, within
the same pool timeout, and the pool only ever sees as many as it has connections.
"""

from __future__ import annotations

import asyncio

import httpx

MAX_CONNECTIONS = 100  # httpx's default pool size


class QueuedTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport | None = None, slots: int = MAX_CONNECTIONS) -> None:
        limits = httpx.Limits(max_connections=slots, max_keepalive_connections=slots)
        self.inner = inner or httpx.AsyncHTTPTransport(limits=limits)
        self.slots = slots
        self._gate: asyncio.Semaphore | None = None

    @property
    def gate(self) -> asyncio.Semaphore:
        if self._gate is None:  # made on first use, inside the loop that serves the gateway
            self._gate = asyncio.Semaphore(self.slots)
        return self._gate

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool = (request.extensions.get("timeout") or {}).get("pool")
        try:
            await asyncio.wait_for(self.gate.acquire(), pool)
        except TimeoutError as exc:
            raise httpx.PoolTimeout(f"no upstream connection free within {pool}s", request=request) from exc
        try:
            response = await self.inner.handle_async_request(request)
            try:
                body = await response.aread()  # the slot is the connection: hold it until the body is in
            finally:
                await response.aclose()
        finally:
            self.gate.release()
        return httpx.Response(response.status_code, headers=response.headers, stream=httpx.ByteStream(body),
                              extensions=response.extensions)

    async def aclose(self) -> None:
        await self.inner.aclose()
