"""gwconf: conformance and contract tests for AI gateways.

What a check author needs is in harness.api (scenarios drive, checks judge); the few names a
pytest user needs are here too. The rest lives in modules named after what they hold.
Imported on first use: a process that needs one module (the reference gateway, an xdist worker)
does not pay for all of them (about 0.4 s).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.checks._judge import Judgement
    from harness.checks._registry import MAY, MUST, SHOULD, Check, check, scenario
    from harness.config._profile import GatewayProfile, ModelRoute
    from harness.errors import CheckFailed, CheckSkipped, ConfigError, GwconfError, UpstreamUnavailable
    from harness.records._outcome import Evidence, Exchange, Outcome
    from harness.scenarios._driver import Driver

_HOMES = {
    "Judgement": "harness.checks._judge",
    "Driver": "harness.scenarios._driver",
    **dict.fromkeys(("CheckFailed", "CheckSkipped", "ConfigError", "GwconfError", "UpstreamUnavailable"),
                    "harness.errors"),
    **dict.fromkeys(("Evidence", "Exchange", "Outcome"), "harness.records._outcome"),
    **dict.fromkeys(("GatewayProfile", "ModelRoute"), "harness.config._profile"),
    **dict.fromkeys(("MAY", "MUST", "SHOULD", "Check", "check", "scenario"), "harness.checks._registry"),
}

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


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
