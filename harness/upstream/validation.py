"""Live request validation: every request a mock receives is judged as the provider would.

The rules are data: the provider's dated catalogue (cassettes/<provider>/catalogue.yaml) says
which models exist, on which routes, with which request schema (schemas/), and which are
retired. This module only applies them, in the provider's order: a retired route or model gets
the provider's answer for it; an unknown model, a model on a route that does not serve it, or a
body that breaks the schema gets the provider's documented refusal. A rule the docs conflict on
or are silent about ([?] in the provider notes) never refuses: the request is accepted and the
capture carries a note.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jsonschema import ValidationError
from jsonschema.exceptions import best_match

from harness.config import _schemas as schemas
from harness.config._catalogue import Answer, Catalogue
from harness.upstream.engine import ParsedRequest, Provider, Reply


@dataclass(frozen=True)
class Verdict:
    """The validation's answer: a refusal to send instead of any cassette, and notes."""

    refusal: Reply | None = None
    notes: tuple[str, ...] = ()
    model: str | None = None  # the model the request names (or the route's default)


def missing_fields(error: ValidationError) -> list[str]:
    """The names a `required` error found missing."""
    if error.validator != "required" or not isinstance(error.instance, dict):
        return []
    return [name for name in error.validator_value if name not in error.instance]


def problems(schema: str, body: Any) -> list[ValidationError]:
    return list(schemas.validator(schema).iter_errors(body))


def describe(error: ValidationError) -> str:
    return f"at /{'/'.join(map(str, error.absolute_path))}: {error.message}"


def gone(answer: Answer, req: ParsedRequest, model: str | None = None) -> Reply:
    """The provider's answer for a retired model or route, filled in for this request."""
    text = json.dumps(answer.body)
    for name, value in (("{model}", model or ""), ("{method}", req.method), ("{path}", req.path)):
        text = text.replace(name, value.replace('"', '\\"'))
    return Reply(answer.status, text.encode())


class RequestValidator:
    """One provider's rules, applied to each request before a cassette answers it."""

    def __init__(self, provider: Provider, catalogue: Catalogue | None) -> None:
        self.provider = provider
        self.catalogue = catalogue

    def retired_route(self, req: ParsedRequest) -> Reply | None:
        """A route the provider has shut down answers as gone, polls and downloads included."""
        route = self.catalogue.retired_route(req.path) if self.catalogue else None
        if route is None:
            return None
        req.notes.append(f"{req.path} was retired by {self.provider.name} on {route.date}: "
                         f"{route.answer.note}")
        return gone(route.answer, req)

    def judge(self, req: ParsedRequest) -> Verdict:
        """Judge a submit (not a poll) against the route's schema and the model's rules."""
        route = schemas.route_schemas(self.provider.name, req.method, req.path)
        if route is None:
            return Verdict(self.provider.unknown_route(req))
        if route.request is not None:
            found = problems(route.request, req.body)
            if found:
                return self.refuse(req, route.request, found)
        if self.catalogue is None:
            return Verdict(model=self.provider.model_of(req))
        model_id = self.provider.model_of(req) or self.catalogue.default_model(req.method, req.path)
        model = self.catalogue.model(model_id)
        if model is None:
            return Verdict(self.provider.unknown_model(req, model_id),
                           (f"{model_id!r} is not in the {self.provider.name} catalogue of "
                            f"{self.catalogue.date}",), model_id)
        if model.lifecycle.retired:
            answer = model.lifecycle.answer
            assert answer is not None  # the catalogue schema requires it
            return Verdict(gone(answer, req, model.id),
                           (f"{model.id} was retired by {self.provider.name} on "
                            f"{model.lifecycle.date}: {answer.note}",), model.id)
        endpoint = model.endpoint(req.method, req.path)
        if endpoint is None:
            served = ", ".join(f"{e.method} {e.path}" for e in model.endpoints)
            return Verdict(self.provider.wrong_endpoint(req, None),
                           (f"{model.id} is not served on {req.method} {req.path} (it is on {served})",),
                           model.id)
        if endpoint.request is not None:
            found = problems(endpoint.request, req.body)
            if found:
                return self.refuse(req, endpoint.request, found, model.id)
        notes = tuple(f"accepted, unconfirmed rule: {u.note}" for u in endpoint.unconfirmed
                      if problems(u.schema, req.body))
        return Verdict(None, notes, model.id)

    def refuse(self, req: ParsedRequest, schema: str, found: list[ValidationError],
               model: str | None = None) -> Verdict:
        first = best_match(found)
        notes = tuple(f"refused by {schema}: {describe(e)}" for e in found)
        return Verdict(self.provider.invalid_request(req, first), notes, model)
