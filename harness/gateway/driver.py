"""Starting and stopping a gateway under test from its profile, bounded in every wait."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import jinja2

from harness.config._profile import GatewayProfile
from harness.errors import ConfigError

HEALTH_POLL_SECONDS = 0.02  # a gateway that is up within 20 ms should not cost 100


def render(text: str, values: dict[str, str]) -> str:
    """Substitute `{name}` placeholders; unknown names are a profile error, not a crash."""
    out = text
    for name, value in values.items():
        out = out.replace("{" + name + "}", value)
    return out


def render_template(path: Path, values: dict[str, object]) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(path.parent),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    try:
        return env.get_template(path.name).render(**values)
    except jinja2.TemplateError as exc:
        raise ConfigError(f"{path}: cannot render config template ({exc})") from exc


@dataclass
class StartedGateway:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=5)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def install_hint(profile: GatewayProfile) -> str:
    """The profile's own install command, for the error a missing gateway gives."""
    if profile.start is None or not profile.start.install:
        return ""
    return f"; install it with: {profile.start.install}"


def check_start_command(profile: GatewayProfile) -> None:
    """Before anything starts: the start command's program, and every file it names under
    `{profile_dir}`, exist; otherwise one line saying how to install the gateway."""
    if profile.start is None:
        return
    values = {"python": sys.executable, "profile_dir": str(profile.path.parent.resolve())}
    program = render(profile.start.command[0], values)
    if "/" in program:
        where = Path(program) if Path(program).is_absolute() else (profile.start.cwd or Path.cwd()) / program
        found = where.is_file() and os.access(where, os.X_OK)
    else:
        found = shutil.which(program) is not None
    if not found:
        raise ConfigError(f"{profile.path}: start command {program!r} not found{install_hint(profile)}")
    for part in profile.start.command[1:]:
        if part.startswith("{profile_dir}") and not Path(render(part, values)).exists():
            raise ConfigError(f"{profile.path}: start command file {render(part, values)!r} not found"
                              f"{install_hint(profile)}")


def start_gateway(profile: GatewayProfile, values: dict[str, str], workdir: Path,
                  extra_env: dict[str, str] | None = None) -> StartedGateway:
    """Run the profile's `start` command and wait (bounded) until its health path answers."""
    assert profile.start is not None
    spec = profile.start
    values = {**values, "python": sys.executable, "profile_dir": str(profile.path.parent.resolve()),
              "workdir": str(workdir)}
    if spec.config_template is not None:
        config_path = workdir / spec.config_name
        config_path.write_text(render_template(spec.config_template, {**values,
                                                                       "profile": profile}))
        values["config"] = str(config_path)
    command = [render(part, values) for part in spec.command]
    env = {**os.environ, **(extra_env or {}),
           **{k: render(v, values) for k, v in spec.env.items()}}
    base_url = render(profile.base_url, values)
    log_path = workdir / f"{profile.name}-gateway.log"
    log = log_path.open("wb")
    try:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   cwd=str(spec.cwd) if spec.cwd else None,
                                   start_new_session=True)
    except OSError as exc:
        raise ConfigError(f"{profile.path}: start command {command[0]!r} failed "
                          f"({exc.strerror}){install_hint(profile)}") from exc
    finally:
        log.close()
    started = StartedGateway(process, base_url, log_path)
    try:
        wait_healthy(base_url + profile.health_path, profile.timeouts.startup, started)
    except ConfigError as exc:
        exited = started.process.poll() is not None  # a broken install often just exits
        started.stop()
        raise ConfigError(f"{exc}{install_hint(profile) if exited else ''}") from exc
    except BaseException:
        started.stop()
        raise
    return started


def wait_healthy(url: str, bound: float, started: StartedGateway | None = None) -> None:
    # One client for every poll: `httpx.get` builds a client and an SSL context per call, tens of
    # milliseconds of CPU taken from the gateway that is booting on the same machine.
    with httpx.Client(timeout=2.0) as client:
        _wait_healthy(client, url, bound, started)


def _wait_healthy(client: httpx.Client, url: str, bound: float, started: StartedGateway | None) -> None:
    deadline = time.monotonic() + bound
    while True:
        if started is not None and started.process.poll() is not None:
            raise ConfigError(f"{url}: gateway exited with code {started.process.returncode} "
                              f"before it was healthy: {started.log_tail()}")
        try:
            response = client.get(url)
            if response.status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() >= deadline:
            tail = f": {started.log_tail()}" if started else ""
            raise ConfigError(f"{url}: gateway not healthy within {bound:g}s{tail}")
        time.sleep(HEALTH_POLL_SECONDS)
