"""Routing: the public model a request names, checked against what this Seawall serves."""

from __future__ import annotations

from collections.abc import Mapping

from seawall.config.schema import Deployment, PublicModel
from seawall.errors import InvalidRequest, ModelNotFound
from seawall.pipeline.context import RequestContext
from seawall.pipeline.pipeline import Handler, Reply

_ENDPOINT = {"chat": "/v1/chat/completions", "embeddings": "/v1/embeddings"}


class ModelTable:
    """Public models and their usable deployments, resolved once at start-up."""

    def __init__(
        self, models: Mapping[str, PublicModel], usable: Mapping[str, tuple[Deployment, ...]]
    ) -> None:
        self.models = dict(models)
        self.usable = dict(usable)

    def serving(self) -> list[PublicModel]:
        """Public models with at least one usable deployment."""
        return [model for name, model in self.models.items() if self.usable.get(name)]


class Route:
    """Resolves the public model; the executor picks its deployment, with fallbacks."""

    name = "route"

    def __init__(self, table: ModelTable) -> None:
        self._table = table

    def wrap(self, call_next: Handler) -> Handler:
        """Set ``ctx.public_model`` or refuse clearly."""
        models = self._table.models

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
            ctx.public_model = model
            ctx.response_headers["x-seawall-model"] = name
            return await call_next(ctx)

        return route
