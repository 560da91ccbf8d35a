"""Kept for old commands: ``python benchmarks/hf_comparison.py ARGS`` is ``mlmclm bench --scenarios impl ARGS``.

See ``mlmclm bench --help`` and docs/performance.md.
"""

from __future__ import annotations

import sys

from mlmclm.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--scenarios", "impl", *sys.argv[1:]]))
