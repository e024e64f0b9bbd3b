"""The semantic cache's embedder: the bundled all-MiniLM-L6-v2, on one thread of its own.

Loaded on first use (about a second); each message is encoded on a dedicated
thread, one at a time, so the event loop never waits and the cache never takes more
than one core from the requests it serves.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from seawall.providers.local_embedding import SentenceEncoder
from seawall.providers.model_files import MINILM_ONNX, MINILM_TOKENIZER

Vector = npt.NDArray[np.float32]


class LocalEmbedder:
    """Unit-length sentence vectors of short texts, off the event loop."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seawall-cache-embed")
        self._encoder: SentenceEncoder | None = None

    async def embed(self, text: str) -> Vector:
        """The vector of ``text`` (loading the model first, once)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.embed_now, text)

    def embed_now(self, text: str) -> Vector:
        """The vector of ``text``, on the calling thread."""
        vector: Vector = self.embed_many([text])[0]
        return vector

    def embed_many(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Vectors of many texts, one row each, on the calling thread (tests, warm-up)."""
        if self._encoder is None:
            self._encoder = SentenceEncoder(MINILM_ONNX.require(), MINILM_TOKENIZER.require(), 1)
        vectors, _ = self._encoder.encode(texts)
        return vectors

    async def aclose(self) -> None:
        """Stop the thread."""
        await asyncio.to_thread(self._executor.shutdown, True, cancel_futures=True)
