"""gwconf: conformance and contract tests for AI gateways.

What a check author needs is here; the rest lives in modules named after what they hold.
"""

from harness.context import CheckContext
from harness.errors import CheckFailed, CheckSkipped, ConfigError, GwconfError, UpstreamUnavailable
from harness.outcome import Evidence, Exchange, Outcome
from harness.profile import GatewayProfile, ModelRoute
from harness.registry import MAY, MUST, SHOULD, Check, check

__all__ = [
    "MAY",
    "MUST",
    "SHOULD",
    "Check",
    "CheckContext",
    "CheckFailed",
    "CheckSkipped",
    "ConfigError",
    "Evidence",
    "Exchange",
    "GatewayProfile",
    "GwconfError",
    "ModelRoute",
    "Outcome",
    "UpstreamUnavailable",
    "check",
]
