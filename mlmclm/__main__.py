"""``python -m mlmclm ...`` is ``mlmclm ...`` (useful where the console script is not on PATH)."""

import sys

from mlmclm.cli import main

sys.exit(main())
