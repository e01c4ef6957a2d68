"""Publish/subscribe for engine events. Subscribers must not block: the reader thread of a
run publishes, and a child must never wait on a face."""

from __future__ import annotations

import threading
from collections.abc import Callable

from workbench.core.engine.events import Message

Subscriber = Callable[[Message], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    def publish(self, event: Message) -> None:
        for callback in self._subscribers:  # a copy-on-write list: no lock on the hot path
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - one broken face must not stop the engine
                pass
