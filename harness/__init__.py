"""gwconf: conformance and contract tests for AI gateways.

What a check author needs is in harness.api (scenarios drive, checks judge); the few names a
pytest user needs are here too. The rest lives in modules named after what they hold.
"""

from harness.checks._judge import Judgement
from harness.checks._registry import MAY, MUST, SHOULD, Check, check, scenario
from harness.config._profile import GatewayProfile, ModelRoute
from harness.errors import CheckFailed, CheckSkipped, ConfigError, GwconfError, UpstreamUnavailable
from harness.records._outcome import Evidence, Exchange, Outcome
from harness.scenarios._driver import Driver

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
