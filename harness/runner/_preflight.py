"""Everything gwconf can check before it starts anything: each problem is one ConfigError (exit 2).

A run that would fail at its end (an --out it cannot write, a cassette the mocks would serve
wrongly) must fail at its start instead, in well under a second, and leave nothing behind.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from harness.config._profile import GatewayProfile, load_profile
from harness.errors import ConfigError

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_out_dir(out: Path) -> None:
    """`--out` is a directory gwconf can create and write, proven by writing a probe file into
    the nearest existing ancestor (permission bits say nothing to root, or about /proc)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: --out must be a directory, and this is a file")
    existing = out
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing != out and not existing.is_dir():
        raise ConfigError(f"{out}: --out cannot be created: {existing} is a file")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".gwconf-probe-"):
            pass
    except OSError as exc:
        raise ConfigError(f"{out}: --out is not writable ({existing}: {exc.strerror or exc})") from exc


def check_cassettes(directory: Path) -> None:
    """The cassettes the mocks will serve, through `gwconf cassettes validate`'s own logic, then
    loaded together as the mocks will (a scenario defined twice shows only then)."""
    from harness.config._cassette import cassette_files, load_cassettes
    from harness.config._cassette_check import validate_tree

    if not cassette_files(directory):
        raise ConfigError(f"{directory}: no cassettes (*.yaml) found")
    problems = validate_tree(directory)
    if problems:
        more = f" (and {len(problems) - 1} more: gwconf cassettes validate {directory})" if len(problems) > 1 else ""
        raise ConfigError(f"{problems[0]}{more}")
    load_cassettes(directory)


def check_scenario_name(name: str) -> None:
    """A scenario name becomes a file name under cassettes/<provider>/: nothing that climbs out."""
    if not SAFE_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(f"--scenario {name!r}: must be letters, digits, '.', '_' or '-' "
                          "(it names cassettes/<provider>/<scenario>.yaml), without '..' or '/'")


def check_run(profile_path: Path, out: Path, cassettes: Path) -> GatewayProfile:
    """Everything `gwconf run` needs, checked before any mock or gateway starts."""
    from harness.gateway.driver import check_start_command
    from harness.scenarios._fuzzing import examples_per_operation

    check_out_dir(out)
    profile = load_profile(profile_path)
    check_start_command(profile)
    check_cassettes(cassettes)
    examples_per_operation()  # GWCONF_FUZZ_EXAMPLES, read only when the FUZZ checks run
    return profile
