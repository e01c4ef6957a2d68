"""The watcher judges a run and asks the engine for stacks through a callback, never by holding
the engine (the engine -> watcher dependency goes one way)."""

from __future__ import annotations

import sys

from tests.helpers import wait_until
from workbench.core.engine.engine import Engine
from workbench.core.engine.settings import Settings
from workbench.core.knowledge import verdicts as V
from workbench.core.record.session import Session

SILENT_CHILD = "import time\nprint('starting', flush=True)\ntime.sleep(600)\n"


def test_a_silent_idle_run_is_hung_after_the_watcher_asks_for_a_dump(tmp_path, no_leaks) -> None:
    settings = Settings()
    settings.stall_window = 1.0
    engine = Engine(Session(tmp_path / "session"), settings=settings)
    asked: list[tuple[str, str]] = []
    real_dump = engine.dump_stacks

    def dump_spy(run_id: str, cause: str = "key", **kwargs: object) -> object:
        asked.append((run_id, cause))
        return real_dump(run_id, cause=cause, **kwargs)

    engine.dump_stacks = dump_spy  # type: ignore[method-assign]
    try:
        run = engine.launch([sys.executable, "-c", SILENT_CHILD], {})
        wait_until(lambda: run.verdict is not None, what="a verdict")
        assert run.verdict == V.HUNG
        assert asked == [(run.id, "stall")]
    finally:
        engine.shutdown()


def test_an_exit_before_ready_is_judged_from_the_exit(tmp_path, no_leaks) -> None:
    engine = Engine(Session(tmp_path / "session"))
    try:
        run = engine.launch([sys.executable, "-c", "print('hello'); raise SystemExit(3)"], {})
        assert run.exited.wait(timeout=120)
        wait_until(lambda: run.verdict is not None, what="a verdict")
        assert run.verdict == V.EXITED and run.returncode == 3
    finally:
        engine.shutdown()
