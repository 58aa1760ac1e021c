"""A small, correct gateway for the cassette set: the executable meaning of "conformant"."""

from harness.reference.app import GatewayApp, build_app
from harness.reference.gateway import Config, ReferenceGateway

__all__ = ["Config", "GatewayApp", "ReferenceGateway", "build_app"]
