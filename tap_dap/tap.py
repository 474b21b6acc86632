"""tap-dap entry point (not built yet)."""

import sys


def cli() -> None:
    sys.exit("tap-dap: not built yet")
