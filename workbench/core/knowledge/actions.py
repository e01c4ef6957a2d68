"""Which fix to offer first: a finding's actions in the order that fits the phase it failed in,
and an action made concrete for the command it is applied to.

A signature's actions are data; each may say the phases it fits best (`first_in`: an OOM during
graph capture → --enforce-eager) or does not help in (`last_in`: during loading the KV cache is
not allocated yet, so --max-model-len cannot be the fix). `{free_port}` in an arg delta becomes a
port that is free when the action is applied, not a number fixed in the data.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from workbench.core.cmdline import apply_arg_delta
from workbench.core.knowledge.signatures import Action

FREE_PORT = "{free_port}"


def ordered_actions(actions: Sequence[Action], phase: str) -> list[Action]:
    """Fitting the phase first, then the rest as the data lists them, then those that do not help."""
    def rank(item: tuple[int, Action]) -> tuple[int, int]:
        index, action = item
        return (0 if phase in action.first_in else 2 if phase in action.last_in else 1, index)

    return [action for _, action in sorted(enumerate(actions), key=rank)]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def concrete(action: Action, port: int | None = None) -> Action:
    """The action with `{free_port}` replaced by a port that is free now (or `port`)."""
    if not any(v == FREE_PORT for v in action.arg_delta.values()):
        return action
    chosen = str(port if port is not None else free_port())
    delta = {k: (chosen if v == FREE_PORT else v) for k, v in action.arg_delta.items()}
    return Action(action.text, delta, dict(action.env_delta), action.first_in, action.last_in)


def first_fitting(actions: Sequence[Action], argv: list[str]) -> Action | None:
    """The first machine-applicable action that changes the command (--enforce-eager on a run
    that already has it fits nothing), made concrete."""
    for action in actions:
        if not action.applicable:
            continue
        if action.env_delta or apply_arg_delta(argv, concrete(action, 0).arg_delta) != argv:
            return concrete(action)
    return None
