"""Errors of gwconf, and what each becomes.

    GwconfError
     +-- ConfigError          bad input to gwconf (profile, cassette, flag): one line, exit 2
     +-- CheckFailed          a check saw the gateway break a requirement: outcome fail/warn
     +-- CheckSkipped         the profile does not claim what the check needs: outcome skip
     +-- UpstreamUnavailable  the harness could not decide (gateway down, timeout): outcome error
"""

from __future__ import annotations


class GwconfError(Exception):
    """Base of every error gwconf raises on purpose."""


class ConfigError(GwconfError):
    """A user mistake in a file or a flag; the message names the file or URL."""


class CheckFailed(GwconfError):
    """A requirement the gateway broke, with what was expected and what arrived."""

    def __init__(self, requirement: str, expected: str = "", actual: str = "") -> None:
        self.requirement = requirement
        self.expected = expected
        self.actual = actual
        super().__init__(self.render())

    def render(self) -> str:
        lines = [self.requirement]
        if self.expected:
            lines.append(f"Expected: {self.expected}")
        if self.actual:
            lines.append(f"  Actual: {self.actual}")
        return "\n".join(lines)


class CheckSkipped(GwconfError):
    """The profile does not claim the capability or model the check needs."""


class UpstreamUnavailable(GwconfError):
    """The harness could not reach the gateway or an upstream, so it cannot decide."""
