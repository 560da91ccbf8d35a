#!/usr/bin/env python
"""Run the configuration-structure tests (config precedence, validation, CLI, dry-run plans).

``python test_train.py`` is a quick self-check of an installation; the whole suite is ``pytest``.
"""

import sys
from pathlib import Path

try:
    import pytest
except ImportError:
    sys.exit("error: pytest is missing; install the test extra: pip install -e '.[test]'")

if __name__ == "__main__":
    tests = Path(__file__).resolve().parent / "tests"
    sys.exit(pytest.main(["-q", str(tests / "test_config.py"), str(tests / "test_cli.py")]))
