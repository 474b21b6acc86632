"""target-dap-sql entry point (not built yet)."""

import sys


def cli() -> None:
    sys.exit("target-dap-sql: not built yet")
