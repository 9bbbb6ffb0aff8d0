#!/usr/bin/env python
"""Thin entry point: ``python run_bench.py --model M --tasks T`` (see harness/commands/cli.py)."""

import sys

from harness.commands.cli import main

if __name__ == "__main__":
    sys.exit(main())
