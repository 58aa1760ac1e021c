"""The live budget of a black-box run: every request that can make a provider generate is paid
for before it is sent, and none is sent once the cap is reached.

A black-box gateway sits in front of real providers, so a check's request costs money. The
ledger is a small JSON file under an exclusive lock (xdist workers are separate processes):
`charge` adds a request's images and cost, or, when that would pass `--max-images` or
`--max-cost`, refuses it with `BudgetExhausted` and marks the run exhausted, after which every
paid request is refused. `BudgetExhausted` is a skip: the check that hit the cap, and each one
after it, ends as "live budget exhausted", with nothing sent.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from harness.config._profile import GatewayProfile
from harness.errors import CheckSkipped, ConfigError

ENV_VAR = "GWCONF_LIVE"
IMAGE_PATHS = ("/v1/images/generations", "/v1/images/edits", "/v1/videos")
CHAT_PATHS = ("/v1/chat/completions",)


class BudgetExhausted(CheckSkipped):
    """A paid request would pass the run's live budget: it is not sent."""


@dataclass(frozen=True)
class Caps:
    max_images: int | None = None
    max_cost: float | None = None  # USD

    def __bool__(self) -> bool:
        return self.max_images is not None or self.max_cost is not None

    def allows(self, images: int, cost: float) -> bool:
        return ((self.max_images is None or images <= self.max_images)
                and (self.max_cost is None or cost <= self.max_cost + 1e-9))

    def describe(self) -> str:
        parts = [f"{self.max_images} images" if self.max_images is not None else "",
                 f"${self.max_cost:g}" if self.max_cost is not None else ""]
        return " / ".join(p for p in parts if p)


@dataclass(frozen=True)
class Charge:
    """What one request may cost at most: the images it asks for and their price."""

    images: int
    cost: float


@dataclass
class Spend:
    images: int = 0
    cost: float = 0.0
    requests: int = 0  # paid requests let through
    refused: int = 0  # paid requests refused at the cap
    exhausted: bool = False


def prices(profile: GatewayProfile) -> dict[str, float]:
    """Alias -> declared price (USD per image; per request for chat)."""
    return {r.alias: r.price_usd for r in profile.models if r.price_usd is not None}


def require_prices(profile: GatewayProfile, caps: Caps) -> None:
    """A cost cap is only as good as the prices: every alias must declare one."""
    if caps.max_cost is None:
        return
    missing = sorted({r.alias for r in profile.models if r.price_usd is None})
    if missing:
        raise ConfigError(f"{profile.path}: --max-cost needs price_usd on every model; missing on "
                          + ", ".join(missing))


def charge_for(method: str, path: str, payload: Mapping[str, Any] | None,
               price_list: Mapping[str, float], submit_path: str = IMAGE_PATHS[0]) -> Charge | None:
    """The most a client request can cost, or None when it cannot make a provider generate
    (polls, listings). An alias without a price is charged at the highest declared price."""
    route = path.split("?", 1)[0]
    if method.upper() != "POST" or route not in (*IMAGE_PATHS, *CHAT_PATHS, submit_path):
        return None
    payload = payload or {}
    model = str(payload.get("model", ""))
    price = price_list.get(model, max(price_list.values(), default=0.0))
    if route in CHAT_PATHS:
        return Charge(0, price)
    try:
        images = max(1, int(payload.get("n", 1)))
    except (TypeError, ValueError):
        images = 1
    return Charge(images, images * price)


@dataclass(frozen=True)
class Ledger:
    path: Path
    caps: Caps

    def spend(self) -> Spend:
        with locked(self.path) as handle:
            return self._read(handle)

    def charge(self, charge: Charge) -> Spend:
        with locked(self.path) as handle:
            spend = self._read(handle)
            allowed = not spend.exhausted and self.caps.allows(spend.images + charge.images,
                                                               spend.cost + charge.cost)
            if allowed:
                spend.images += charge.images
                spend.cost += charge.cost
                spend.requests += 1
            else:
                spend.refused += 1
                spend.exhausted = True
            self._write(handle, spend)
        if not allowed:
            raise BudgetExhausted(f"live budget exhausted ({self.caps.describe()}; spent {spend.images} images, "
                                  f"${spend.cost:.4f}): request not sent")
        return spend

    @staticmethod
    def _read(handle: TextIO) -> Spend:
        handle.seek(0)
        text = handle.read()
        return Spend(**json.loads(text)) if text.strip() else Spend()

    @staticmethod
    def _write(handle: TextIO, spend: Spend) -> None:
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(asdict(spend)))
        handle.flush()


@contextmanager
def locked(path: Path) -> Iterator[TextIO]:
    """The ledger file, open and exclusively locked (flock, released on close)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield handle


@dataclass(frozen=True)
class LiveRun:
    """What a black-box run hands its checks (through ENV_VAR): the ledger, caps, prices, and
    where live exchanges are recorded."""

    ledger: str
    caps: Caps
    prices: dict[str, float]
    tapes: str

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "caps": asdict(self.caps)})

    @classmethod
    def from_environ(cls) -> LiveRun | None:
        text = os.environ.get(ENV_VAR)
        if not text:
            return None
        data = json.loads(text)
        return cls(data["ledger"], Caps(**data["caps"]), data["prices"], data["tapes"])

    def charge(self, method: str, path: str, payload: Mapping[str, Any] | None, submit_path: str) -> None:
        charge = charge_for(method, path, payload, self.prices, submit_path)
        if charge is not None:
            Ledger(Path(self.ledger), self.caps).charge(charge)
