"""gwconf: conformance and contract tests for AI gateways.

What a check author needs is in harness.api (scenarios drive, checks judge); the few names a
pytest user needs are here too. The rest lives in modules named after what they hold.
"""

from harness.errors import CheckFailed, CheckSkipped, ConfigError, GwconfError, UpstreamUnavailable
from harness.judge import Judgement
from harness.outcome import Evidence, Exchange, Outcome
from harness.profile import GatewayProfile, ModelRoute
from harness.registry import MAY, MUST, SHOULD, Check, check, scenario
from harness.scenario import Driver

__all__ = [
    "MAY",
    "MUST",
    "SHOULD",
    "Check",
    "CheckFailed",
    "CheckSkipped",
    "ConfigError",
    "Driver",
    "Evidence",
    "Exchange",
    "GatewayProfile",
    "GwconfError",
    "Judgement",
    "ModelRoute",
    "Outcome",
    "UpstreamUnavailable",
    "check",
    "scenario",
]
