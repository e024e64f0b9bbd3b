"""Routing: the public model a request names, checked against what this Seawall serves.

A router model (``auto``) is resolved here too: its policy scores the request and
names the cheap or the strong model, which then stands in for it, so candidates,
fallbacks and the record see an ordinary public model. The decision goes to the
``x-seawall-route-decision`` header and the request record.
"""

from __future__ import annotations

from collections.abc import Mapping

from seawall.config.schema import Deployment, PublicModel
from seawall.errors import InvalidRequest, ModelNotFound
from seawall.pipeline.context import RequestContext
from seawall.pipeline.pipeline import Handler, Reply

_ENDPOINT = {"chat": "/v1/chat/completions", "embeddings": "/v1/embeddings"}


class ModelTable:
    """Public models and their usable deployments, resolved once at start-up.

    A router's usable deployments are those of the models it routes to
    (``Settings.deployments_for``), so it is listed while one of them can answer.
    """

    def __init__(
        self, models: Mapping[str, PublicModel], usable: Mapping[str, tuple[Deployment, ...]]
    ) -> None:
        self.models = dict(models)
        self.usable = dict(usable)

    def serving(self) -> list[PublicModel]:
        """Public models with at least one usable deployment."""
        return [model for name, model in self.models.items() if self.usable.get(name)]

    def serving_names(self) -> frozenset[str]:
        """Names of the public models with at least one usable deployment."""
        return frozenset(model.name for model in self.serving())


class Route:
    """Resolves the public model; the executor picks its deployment, with fallbacks."""

    name = "route"

    def __init__(self, table: ModelTable) -> None:
        self._table = table

    def wrap(self, call_next: Handler) -> Handler:
        """Set ``ctx.public_model`` or refuse clearly."""
        models = self._table.models
        serving = self._table.serving_names()

        async def route(ctx: RequestContext) -> Reply:
            name = ctx.body["model"]
            model = models.get(name)
            if model is None:
                raise ModelNotFound(
                    f"The model '{name}' does not exist on this Seawall. "
                    "GET /v1/models lists the models it serves.",
                    param="model",
                )
            if model.operation != ctx.operation:
                raise InvalidRequest(
                    f"The model '{name}' is a{'n' if model.operation == 'embeddings' else ''} "
                    f"{model.operation} model; call {_ENDPOINT[model.operation]} with it.",
                    param="model",
                    code="model_not_supported",
                )
            if model.router is not None:
                decision = model.router.decide(ctx.body, serving)
                ctx.route_decision = decision.describe(name)
                ctx.response_headers["x-seawall-route-decision"] = ctx.route_decision
                model = models[decision.model]
            ctx.public_model = model
            ctx.response_headers["x-seawall-model"] = model.name
            return await call_next(ctx)

        return route
