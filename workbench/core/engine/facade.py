"""What a face may use of an engine: a local `Engine` and an attached `RemoteEngine` both fit.

Faces read runs (their log stores, diagnosis, verdicts), listen on the bus and call the command
methods from worker threads; everything else about the engine is its own business.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from workbench.core.engine.bus import EventBus
from workbench.core.engine.run import Run
from workbench.core.engine.settings import Settings
from workbench.core.knowledge.diagnosis import Recogniser
from workbench.core.probes.http import SmokeOutcome
from workbench.core.probes.stacks import ProcessDump


class EngineFacade(Protocol):
    runs: Mapping[str, Run]
    bus: EventBus
    dumps: dict[str, list[list[ProcessDump]]]
    recogniser: Recogniser
    settings: Settings
    closed: bool

    def launch(self, argv: list[str], env_delta: dict[str, str | None] | None = None, cwd: str | None = None,
               label: str = "", cause: str = "launch", parent: str | None = None) -> Run: ...

    def relaunch(self, run_id: str, env_delta: dict[str, str | None] | None = None,
                 arg_delta: dict[str, str | bool] | None = None, cause: str = "relaunch",
                 keep_old: bool = False) -> Run: ...

    def stop(self, run_id: str, kill: bool = False, cause: str = "stop") -> tuple[str, list[int]]: ...

    def dump_stacks(self, run_id: str, native: bool = False, locals_: bool = False,
                    cause: str = "key") -> list[ProcessDump]: ...

    def smoke(self, run_id: str) -> SmokeOutcome: ...

    def send_input(self, run_id: str, data: bytes) -> int: ...

    def profile(self, run_id: str, pid: int, seconds: float = 10.0, native: bool = False) -> Any: ...

    def shutdown(self) -> None: ...
