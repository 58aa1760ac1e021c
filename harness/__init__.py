"""gwconf: conformance and contract tests for AI gateways.

What a check author needs is here; the rest lives in modules named after what they hold.
Imported on first use: a process that needs one module (the reference gateway, an xdist worker)
does not pay for all of them (about 0.4 s).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.context import CheckContext
    from harness.errors import CheckFailed, CheckSkipped, ConfigError, GwconfError, UpstreamUnavailable
    from harness.outcome import Evidence, Exchange, Outcome
    from harness.profile import GatewayProfile, ModelRoute
    from harness.registry import MAY, MUST, SHOULD, Check, check

_HOMES = {
    "CheckContext": "harness.context",
    **dict.fromkeys(("CheckFailed", "CheckSkipped", "ConfigError", "GwconfError", "UpstreamUnavailable"),
                    "harness.errors"),
    **dict.fromkeys(("Evidence", "Exchange", "Outcome"), "harness.outcome"),
    **dict.fromkeys(("GatewayProfile", "ModelRoute"), "harness.profile"),
    **dict.fromkeys(("MAY", "MUST", "SHOULD", "Check", "check"), "harness.registry"),
}

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


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
