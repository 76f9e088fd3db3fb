#!/usr/bin/env python3
"""Write or check the safetensors fixture that proves swift-npid reads and writes the format
the way Hugging Face's Python package does.

    make_safetensors_fixture.py write [OUT]   writes the fixture with Python's safetensors
    make_safetensors_fixture.py check FILE    checks that FILE contains exactly the fixture tensors

The default OUT is Tests/NPIDTests/Formats/Fixtures/python_written.safetensors. The Swift test
SafetensorsPythonFixtureTests reads that file and compares it with the same values, so keep
the two in step. Needs `pip install safetensors numpy` (checked with safetensors 0.8.0 and
numpy 2.4.6).
"""

import os
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

DEFAULT_OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "NPIDTests", "Formats", "Fixtures",
                           "python_written.safetensors")

METADATA = {"format": "np", "writer": "make_safetensors_fixture.py"}


def fixture_tensors():
    """Return the fixture tensors, built from formulas so the Swift test can rebuild them."""
    return {
        "embedding": (np.arange(32, dtype=np.float32) * 0.25 - 3).reshape(4, 8),
        "memory_bank": np.array([[0.1, -0.2], [3.5, 1e300], [-1e-300, 0.0]], dtype=np.float64),
        "labels": np.array([0, 1, -1, 2**40, -(2**62)], dtype=np.int64),
        "index": np.array(42, dtype=np.int32),
        "half": np.array([1.0, -2.0, 0.5], dtype=np.float16),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "mask": np.array([True, False, False, True]),
        "pixels": (np.arange(6, dtype=np.uint8) * 50).reshape(2, 3),
        "small": np.array([-128, 0, 127], dtype=np.int8),
        "short": np.array([-300, 300], dtype=np.int16),
    }


def check(path):
    """Exit non-zero unless the file contains exactly the fixture tensors and metadata."""
    from safetensors import safe_open

    expected = fixture_tensors()
    loaded = load_file(path)
    problems = []
    if sorted(loaded) != sorted(expected):
        problems.append(f"names {sorted(loaded)} differ from {sorted(expected)}")
    for name, value in expected.items():
        got = loaded.get(name)
        if got is None:
            continue
        if got.dtype != value.dtype or got.shape != value.shape or not np.array_equal(got, value):
            problems.append(f"tensor {name}: got {got.dtype} {got.shape} {got.tolist()}, "
                            f"expected {value.dtype} {value.shape} {value.tolist()}")
    with safe_open(path, framework="numpy") as file:
        metadata = file.metadata()
    if metadata != METADATA:
        problems.append(f"metadata {metadata} differs from {METADATA}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"{path}: all {len(expected)} tensors and the metadata match")


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "write":
        out = sys.argv[2] if len(sys.argv) > 2 else DEFAULT_OUT
        save_file(fixture_tensors(), out, metadata=METADATA)
        print(f"wrote {out} ({os.path.getsize(out)} bytes)")
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        check(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
