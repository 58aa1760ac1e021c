"""Provider fixtures: vcrpy cassettes with a ``metadata.gwconf`` block, loaded through vcrpy."""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from harness.errors import ConfigError

CATALOGUE_FILE = "catalogue.yaml"  # a provider's model catalogue (harness/config/_catalogue.py)
# Cassettes write result URLs against this host; the mock upstream swaps in its own base URL.
FILES_HOST = "http://mock.gwconf.invalid"


@dataclass(frozen=True)
class Provenance:
    kind: str  # "docs" | "sdk" | "live-recording"
    source: str  # documentation URL or "package==version"
    note: str = ""


@dataclass(frozen=True)
class Interaction:
    method: str
    path: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, list[str]]
    response_body: bytes



@dataclass(frozen=True)
class Cassette:
    path: Path
    provider: str
    scenario: str
    capability: str
    models: tuple[str, ...]
    provenance: Provenance
    interactions: tuple[Interaction, ...]
    default: bool = False
    retired: bool = False  # plays the provider's answer for a retired model or route
    region: str | None = None
    fault: dict[str, Any] = field(default_factory=dict)  # {"kind": "hang"|"drop"|"malformed", ...}
    ids: dict[str, str] = field(default_factory=dict)  # literal ids to rewrite per request
    raw_metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_task(self) -> bool:
        """An async scenario: one submit followed by the ordered poll answers."""
        return len(self.interactions) > 1

    @property
    def submit(self) -> Interaction:
        return self.interactions[0]

    @property
    def polls(self) -> tuple[Interaction, ...]:
        return self.interactions[1:]

    @property
    def route(self) -> tuple[str, str]:
        return self.submit.method, self.submit.path


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, dict):
        body = body.get("string", b"")
    if hasattr(body, "read"):  # a file-like body (vcrpy's BytesIO tag)
        body = body.read()
    elif isinstance(body, Iterator):  # an iterator body (vcrpy's builtins.iter tag): its chunks
        body = b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in body)
    return body.encode() if isinstance(body, str) else bytes(body)


def file_stamp(path: Path) -> tuple[int, int]:
    """What tells a changed file from the one read before: its mtime and size (0s if unreadable)."""
    try:
        stat = path.stat()
    except OSError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_size)


def load_cassette(path: Path) -> Cassette:
    """Load one cassette; every problem becomes a ConfigError naming the file. A file is parsed
    once per process while it stays unchanged: every run (and every mutant run of the project's
    tests) starts mocks from the same cassettes."""
    return _load_cassette(path, file_stamp(path))


@functools.lru_cache(maxsize=1024)
def _load_cassette(path: Path, stamp: tuple[int, int]) -> Cassette:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read cassette ({exc.strerror})") from exc
    try:
        loaded = read_vcr_document(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} invalid YAML ({getattr(exc, 'problem', exc)})") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: not a vcrpy cassette ({exc})") from exc
    if not isinstance(loaded[2], dict) or "gwconf" not in loaded[2]:
        raise ConfigError(f"{path}: missing the metadata.gwconf block")
    requests, responses, metadata = loaded
    meta = metadata["gwconf"]
    try:
        interactions = tuple(
            Interaction(
                method=str(req["method"]).upper(),
                path=urlsplit(req["uri"]).path,
                request_headers={k.lower(): first(v) for k, v in (req.get("headers") or {}).items()},
                request_body=_body_bytes(req.get("body")),
                status=int(resp["status"]["code"]),
                response_headers={k.lower(): list(v) for k, v in (resp.get("headers") or {}).items()},
                response_body=_body_bytes(resp.get("body")),
            )
            for req, resp in zip(requests, responses, strict=True)
        )
        prov = meta["provenance"]
        return Cassette(
            path=path,
            provider=meta["provider"],
            scenario=meta["scenario"],
            capability=meta["capability"],
            models=tuple(meta.get("models", ())),
            provenance=Provenance(prov["kind"], prov["source"], prov.get("note", "")),
            interactions=interactions,
            default=bool(meta.get("default", False)),
            retired=bool(meta.get("retired", False)),
            region=meta.get("region"),
            fault=dict(meta.get("fault") or {}),
            ids=dict(meta.get("ids") or {}),
            raw_metadata=meta,
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: malformed cassette ({type(exc).__name__}: {exc})") from exc


def raw_document(path: Path) -> dict[str, Any]:
    """The cassette as plain data, for schema validation of the file itself."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=CassetteLoader)


class CassetteLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """vcrpy's cassette loader, rebuilt: PyYAML's safe loader (C, where libyaml is installed) plus the
    benign Python tags vcrpy itself accepts (vcr/serializers/yamlserializer.py, 9.4.2), and no other.
    Reading with it here, rather than through `vcr.serialize`, spares each process vcrpy's import:
    it imports every HTTP library vcrpy can patch, 0.15 s of a 1.5 s run. tests/test_cassettes.py
    shows that this reads every bundled cassette, and those tags, as vcrpy's `deserialize` does."""


def _python_str(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return loader.construct_scalar(node)  # type: ignore[arg-type]


def _python_tuple(loader: yaml.SafeLoader, node: yaml.Node) -> tuple[Any, ...]:
    return tuple(loader.construct_sequence(node))  # type: ignore[arg-type]


def _bytes_io(loader: yaml.SafeLoader, node: yaml.Node) -> io.BytesIO:
    """A file-like body an old recording pickled: rebuilt from its bytes only."""
    state = loader.construct_mapping(node, deep=True).get("state") or (b"",)  # type: ignore[arg-type]
    data = state[0] if state else b""
    return io.BytesIO(data.encode("utf-8") if isinstance(data, str) else data or b"")


def _iterator(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    args = loader.construct_mapping(node, deep=True).get("args") or ([],)  # type: ignore[arg-type]
    return iter(args[0] if args else [])


for _tag, _constructor in {
    "tag:yaml.org,2002:python/str": _python_str,
    "tag:yaml.org,2002:python/unicode": _python_str,
    "tag:yaml.org,2002:python/tuple": _python_tuple,
    "tag:yaml.org,2002:python/object/new:_io.BytesIO": _bytes_io,
    "tag:yaml.org,2002:python/object/apply:builtins.iter": _iterator,
}.items():
    CassetteLoader.add_constructor(_tag, _constructor)


def read_vcr_document(text: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """A vcrpy cassette's requests, responses and metadata, as plain data."""
    data = yaml.load(text, Loader=CassetteLoader)
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        raise ValueError("no interactions list")
    interactions = data["interactions"]
    return ([i["request"] for i in interactions], [i["response"] for i in interactions],
            data.get("metadata") or {})


def first(value: Any) -> Any:
    """A cassette keeps each header as a list of values; a request's first one is the one sent
    (vcrpy's HeadersDict does the same)."""
    return value[0] if isinstance(value, (list, tuple)) and value else value


def cassette_files(root: Path) -> list[Path]:
    """Every cassette under `root`; each provider's catalogue.yaml beside them is not one."""
    if not root.is_dir():
        raise ConfigError(f"{root}: cassette directory not found")
    return sorted(p for p in root.rglob("*.yaml") if p.name != CATALOGUE_FILE)


def load_cassettes(root: Path) -> list[Cassette]:
    cassettes = [load_cassette(p) for p in cassette_files(root)]
    if not cassettes:
        raise ConfigError(f"{root}: no cassettes (*.yaml) found")
    seen: dict[tuple[str, str], Path] = {}
    for c in cassettes:
        key = (c.provider, c.scenario)
        if key in seen:
            raise ConfigError(f"{c.path}: scenario {c.scenario!r} already defined in {seen[key]}")
        seen[key] = c.path
    return cassettes
