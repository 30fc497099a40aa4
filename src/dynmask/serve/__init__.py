"""``dynmask serve``: a trained run (or its ONNX export) behind an HTTP endpoint (FastAPI + uvicorn, the
``serve`` extra). See :func:`dynmask.serve.app.create_app`."""

from .app import create_app
from .batcher import MicroBatcher, QueueFull

__all__ = ["create_app", "MicroBatcher", "QueueFull"]
