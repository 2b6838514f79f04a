"""Stage 1, import: models into Relax.

Owns: ONNX import (``onnx_import``: ``from_onnx`` binds weights and folds constants,
``ModelImportError`` for unreadable or malformed files) and the built-in reference
models (``models``: SqueezeNet 1.0/1.1 built in code, the packaged digits network) and
QDQ models (``qdq``: QuantizeLinear / DequantizeLinear folded into the float model, the
model's scales and int8 weights recorded for the later stages).

May import: the top-level base modules (``errors``, ``boards``, ``cache``, ``progress``,
``native``, ``target``) only. Every later stage may import it.
"""
from .onnx_import import ModelImportError, from_onnx, input_names, load_onnx
from .qdq import QdqError, dequantize_model

__all__ = ["ModelImportError", "QdqError", "dequantize_model", "from_onnx", "input_names",
           "load_onnx"]
