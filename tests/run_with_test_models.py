"""``run_bench.py`` with the test-only models registered (tests start it as a subprocess)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tests.slow_models  # noqa: E402,F401  (registers the models)
from harness.commands.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
