"""Mock provider upstreams that replay cassettes to a gateway under test."""

from harness.upstream.server import UpstreamSet, start_upstreams

__all__ = ["UpstreamSet", "start_upstreams"]
