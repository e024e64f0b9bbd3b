"""Golden sets: a bad file is refused naming its line; answers are compared by meaning."""

from __future__ import annotations

from pathlib import Path

import pytest

from seawall.cache.embedder import LocalEmbedder
from seawall.config.schema import PublicModel
from seawall.monitoring.golden import GoldenAnswers, GoldenItem, GoldenSetError, load_golden_set
from seawall.pipeline.context import Identity, RequestContext

MODELS = ["gpt-4o-mini"]


def _load(tmp_path: Path, text: str) -> list[GoldenItem]:
    path = tmp_path / "golden.jsonl"
    path.write_text(text)
    return load_golden_set(path, MODELS)


def test_a_golden_set_is_read_skipping_blank_lines(tmp_path: Path) -> None:
    items = _load(
        tmp_path,
        '{"model": "gpt-4o-mini", "prompt": "p", "answer": "a"}\n\n'
        '{"model": "gpt-4o-mini", "prompt": "q", "answer": "b", "system": "be brief"}\n',
    )
    assert items == [
        GoldenItem("gpt-4o-mini", "p", "a"),
        GoldenItem("gpt-4o-mini", "q", "b", "be brief"),
    ]
    assert items[1].request()["messages"][0] == {"role": "system", "content": "be brief"}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json", "not a JSON object"),
        ('{"model": "gpt-4o-mini", "prompt": "p"}', "needs non-empty strings"),
        ('{"model": "gpt-4o-mini", "prompt": "", "answer": "a"}', "needs non-empty strings"),
        ('{"model": "gpt-9", "prompt": "p", "answer": "a"}', "'gpt-9' is not configured"),
    ],
)
def test_a_bad_line_is_refused_by_number(tmp_path: Path, line: str, problem: str) -> None:
    good = '{"model": "gpt-4o-mini", "prompt": "p", "answer": "a"}'
    with pytest.raises(GoldenSetError, match=rf"golden.jsonl:2: .*{problem}"):
        _load(tmp_path, f"{good}\n{line}\n")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GoldenSetError, match="cannot read the golden set"):
        load_golden_set(tmp_path / "absent.jsonl", MODELS)


async def test_a_paraphrase_is_closer_to_the_golden_answer_than_a_wrong_answer() -> None:
    item = GoldenItem("gpt-4o-mini", "What is the capital of France?", "Paris is France's capital.")
    embedder = LocalEmbedder()
    golden = GoldenAnswers([item], embedder)
    try:
        same = await golden.similarity(item, "The capital of France is Paris.")
        wrong = await golden.similarity(item, "Bananas grow in tropical climates.")
    finally:
        await embedder.aclose()
    assert same > 0.8
    assert wrong < 0.4


def test_only_a_single_user_message_equal_to_a_golden_prompt_matches() -> None:
    item = GoldenItem("gpt-4o-mini", "What is the capital of France?", "Paris.")
    golden = GoldenAnswers([item], LocalEmbedder())

    def ctx(model: str, messages: list[dict[str, str]]) -> RequestContext:
        context = RequestContext("req_1", "openai", "chat", b"", Identity())
        context.public_model = PublicModel(name=model, deployments=("d",))
        context.body = {"model": model, "messages": messages}
        return context

    asked = [{"role": "user", "content": " What is the capital of France? "}]
    assert golden.match(ctx("gpt-4o-mini", asked)) is item
    assert golden.match(ctx("other-model", asked)) is None
    system = [{"role": "system", "content": "x"}, *asked]
    assert golden.match(ctx("gpt-4o-mini", system)) is None
