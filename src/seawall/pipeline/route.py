"""Routing: public model name -> the deployment that will answer."""

from __future__ import annotations

from collections.abc import Mapping

from seawall.config.schema import Deployment, PublicModel
from seawall.errors import InvalidRequest, ModelNotFound, ServiceUnavailable
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
    """Picks the deployment; fallback and load balancing arrive in a later stage."""

    name = "route"

    def __init__(self, table: ModelTable) -> None:
        self._table = table

    def wrap(self, call_next: Handler) -> Handler:
        """Set ``ctx.public_model`` and ``ctx.deployment`` or refuse clearly."""
        models = self._table.models
        usable = self._table.usable

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
            deployments = usable.get(name)
            if not deployments:
                raise ServiceUnavailable(
                    f"No deployment of model '{name}' is usable right now (missing API key, "
                    "model file or runtime); check `seawall config check`."
                )
            deployment = deployments[0]
            ctx.public_model = model
            ctx.deployment = deployment
            ctx.response_headers["x-seawall-model"] = name
            ctx.response_headers["x-seawall-deployment"] = deployment.name
            return await call_next(ctx)

        return route
