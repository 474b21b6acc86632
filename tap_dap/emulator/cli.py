"""dap-emulator entry point (not built yet)."""

import sys


def main() -> None:
    sys.exit("dap-emulator: not built yet")
