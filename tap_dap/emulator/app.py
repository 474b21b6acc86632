"""The emulator's state in one object: store, jobs, credentials, URL signer, faults, settings."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tap_dap.emulator.auth import Authority, UrlSigner
from tap_dap.emulator.datasets import DatasetOptions, build_store
from tap_dap.emulator.faults import FaultBook
from tap_dap.emulator.jobs import JobManager, JobSettings
from tap_dap.emulator.store import Store

DEFAULT_CLIENT_ID = "us-east-1#emulator-client"
DEFAULT_CLIENT_SECRET = "emulator-secret"


@dataclass
class ServeOptions:
    """Everything ``dap-emulator serve`` accepts (besides host and port)."""

    dataset: DatasetOptions
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    token_ttl: int = 3600
    url_ttl: int = 900
    jobs: JobSettings | None = None
    rate_limits: dict[str, int] | None = None

    def __repr__(self) -> str:  # the secret stays out of logs and tracebacks
        return f"ServeOptions(dataset={self.dataset!r}, client_id={self.client_id!r}, secret=***)"


class EmulatorApp:
    def __init__(self, options: ServeOptions, workdir: Path | None = None) -> None:
        self.options = options
        self.store: Store = build_store(options.dataset)
        self._owns_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="dap-emulator-"))
        self.jobs = JobManager(self.store, options.jobs or JobSettings(), self.workdir)
        self.authority = Authority(options.client_id, options.client_secret, options.token_ttl)
        self.signer = UrlSigner(options.url_ttl)
        self.faults = FaultBook(options.rate_limits)

    @property
    def latency(self) -> float:
        return self.jobs.settings.latency

    def close(self) -> None:
        self.jobs.close()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
