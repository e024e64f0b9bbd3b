"""The embedded default: what Seawall serves with no configuration file."""

from __future__ import annotations

from collections.abc import Mapping

from seawall.config.schema import Deployment, PublicModel

LOCAL_CHAT_MODEL = "smollm2-135m-instruct"
LOCAL_EMBEDDING_MODEL = "all-minilm-l6-v2-embed"


def local_deployments(threads: int = 1) -> list[Deployment]:
    """The bundled local chat model and local embeddings."""
    return [
        Deployment(
            name="local-smollm2",
            provider="local-llama",
            model=LOCAL_CHAT_MODEL,
            operation="chat",
            context_window=8192,
            max_output_tokens=1024,
            max_concurrency=1,
            threads=threads,
        ),
        Deployment(
            name="local-minilm",
            provider="local-embedding",
            model=LOCAL_EMBEDDING_MODEL,
            operation="embeddings",
            context_window=256,
            max_output_tokens=0,
            max_concurrency=1,
            threads=threads,
        ),
    ]


def provider_deployments(environ: Mapping[str, str]) -> list[Deployment]:
    """OpenAI and Anthropic models, when their API keys are in the environment."""
    deployments: list[Deployment] = []
    openai_key = environ.get("OPENAI_API_KEY")
    if openai_key:
        base = environ.get("OPENAI_BASE_URL") or None
        for model, operation, window, max_out in (
            ("gpt-4o-mini", "chat", 128_000, 16_384),
            ("gpt-4.1-mini", "chat", 1_047_576, 32_768),
            ("text-embedding-3-small", "embeddings", 8_191, 0),
        ):
            deployments.append(
                Deployment(
                    name=f"openai-{model}",
                    provider="openai",
                    model=model,
                    operation=operation,  # type: ignore[arg-type]
                    api_base=base,
                    api_key=openai_key,
                    context_window=window,
                    max_output_tokens=max_out,
                )
            )
    anthropic_key = environ.get("ANTHROPIC_API_KEY")
    if anthropic_key:
        base = environ.get("ANTHROPIC_BASE_URL") or None
        for model in ("claude-3-5-haiku-latest", "claude-sonnet-4-0"):
            deployments.append(
                Deployment(
                    name=f"anthropic-{model}",
                    provider="anthropic",
                    model=model,
                    api_base=base,
                    api_key=anthropic_key,
                    context_window=200_000,
                    max_output_tokens=8_192,
                )
            )
    return deployments


def one_to_one_models(deployments: list[Deployment]) -> dict[str, PublicModel]:
    """A public model per deployment, named after its upstream model."""
    return {
        d.model: PublicModel(name=d.model, deployments=(d.name,), operation=d.operation)
        for d in deployments
    }
