"""Authorization: the key may use the model it asks for; whom the request is for."""

from __future__ import annotations

from seawall.errors import PermissionDenied
from seawall.pipeline.context import RequestContext
from seawall.pipeline.pipeline import Handler, Reply


class Authorize:
    """Refuses a model outside the key's scope (the requested name, before routing).

    It also settles the end user once for limits, budgets and the record: the key's
    bound user, else ``x-seawall-user``, else the body's ``user`` field.
    """

    name = "authorize"

    def wrap(self, call_next: Handler) -> Handler:
        """Check the model scope, then carry on."""

        async def authorize(ctx: RequestContext) -> Reply:
            ctx.identity.user = ctx.end_user()
            principal = ctx.principal
            if principal is not None and principal.models is not None:
                model = ctx.body.get("model")
                if model not in principal.models:
                    raise PermissionDenied(
                        f"This API key ({principal.key_id}) may not use the model {model!r}; "
                        f"it may use {', '.join(sorted(principal.models))}.",
                        param="model",
                    )
            return await call_next(ctx)

        return authorize
