"""A faithful local emulator of the DAP API (never imported by the tap or target at run time).

Start it with ``dap-emulator serve`` (see ``tap_dap.emulator.cli``) or in-process::

    app = EmulatorApp(ServeOptions(DatasetOptions("canvas", rows=1000)))
    server = make_server(app, "127.0.0.1", 0)
"""

from tap_dap.emulator.app import EmulatorApp, ServeOptions
from tap_dap.emulator.datasets import DatasetOptions, build_store
from tap_dap.emulator.errors import ApiError, DatasetError, EmulatorError
from tap_dap.emulator.jobs import JobSettings
from tap_dap.emulator.server import make_server

__all__ = [
    "ApiError",
    "DatasetError",
    "DatasetOptions",
    "EmulatorApp",
    "EmulatorError",
    "JobSettings",
    "ServeOptions",
    "build_store",
    "make_server",
]
