"""Optional dependencies: ``pip install dynmask`` needs only torch, numpy, safetensors, tokenizers and
tqdm; the task layer's readers, metrics and plots come with ``dynmask[tasks]`` (installed by the
README's commands), Hugging Face with ``[hf]``, ONNX with ``[onnx]``, Keras with ``[keras]``, the HTTP
server with ``[serve]``, hub-style save / load with ``[hub]``."""

from __future__ import annotations

import importlib

from .errors import DataError

__all__ = ["require"]

_EXTRA = {
    "pandas": "tasks",
    "pyarrow": "tasks",
    "matplotlib": "tasks",
    "sacrebleu": "tasks",
    "rouge_score": "tasks",
    "sklearn": "tasks",
    "transformers": "hf",
    "onnxruntime": "onnx",
    "keras": "keras",
    "fastapi": "serve",
    "uvicorn": "serve",
    "joblib": "serve",
    "huggingface_hub": "hub",
}


def require(module: str):
    """Import ``module`` or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = _EXTRA.get(module.split(".")[0], "tasks")
        raise DataError(f"this needs {module.split('.')[0]}: pip install 'dynmask[{extra}]'") from None
