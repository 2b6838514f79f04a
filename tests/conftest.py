import sys
from pathlib import Path

# Test-only helpers (onnx_graphs) live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))
