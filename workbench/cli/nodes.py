"""`--on ssh://[user@]host[:port]` and `--cluster FILE`: runs supervised by an agent on each node."""

from __future__ import annotations

import argparse
import sys

from workbench.cli.common import env_delta_of, knowledge_base, settings_from
from workbench.cli.parser import UsageError


def _node_spec(args: argparse.Namespace):
    from workbench.core.remote.node_engine import NodeSpec
    from workbench.core.remote.ssh import parse_target

    try:
        target = parse_target(args.on)
    except ValueError as exc:
        raise UsageError(f"workbench --on: {exc}") from None
    return NodeSpec(target.host, target, args.python or "python3", args.ssh_config, {}, "head")


def _headless_options(args: argparse.Namespace):
    from workbench.faces.headless import HeadlessOptions

    return HeadlessOptions(json=args.json, raw=args.raw, force=args.force, session_dir=args.session_dir,
                           quiet=args.quiet, env_delta=env_delta_of(args.env), cwd=args.cwd)


def cmd_run_on(args: argparse.Namespace, command: list[str]) -> int:
    """One remote node: headless, or the TUI through the node's engine."""
    from workbench.faces.nodes import NodeLaunch, run_headless_nodes

    args = _with_defaults(args)
    node = _node_spec(args)
    if not command:
        raise UsageError("workbench --on HOST: give the command after --")
    if getattr(args, "headless", False):
        launch = NodeLaunch(node, list(command), env_delta_of(args.env))
        return run_headless_nodes([launch], _headless_options(args), settings_from(args),
                                  knowledge_base(args.signatures), name=node.name)
    return _tui_on(node, command, args)


def _tui_on(node, command: list[str], args: argparse.Namespace) -> int:
    from workbench.core.engine.engine import session_for
    from workbench.core.record.session import Session
    from workbench.core.remote.node_engine import connect_node

    try:
        from workbench.ui.remote import make_remote_app
    except ImportError as exc:
        raise UsageError(f"the TUI is not available: {exc}") from None
    session = session_for(args.session_dir, name=node.name)
    engine = connect_node(node, Session(session.dir / "nodes" / node.name, name=node.name),
                          knowledge_base(args.signatures), settings_from(args))
    try:
        engine.launch(list(command), env_delta_of(args.env))
        app = make_remote_app(engine, f"{node.name} over ssh", getattr(args, "layout", None) or "single")
        app.sub_title = f"{node.target} (agent on {engine.node.welcome.get('host', '?')}; q stops the runs there)"
        app.run()
    finally:
        engine.shutdown()  # the node's runs end with the face, like a local session's
        session.close()
    return 0


def cmd_run_cluster(args: argparse.Namespace, command: list[str]) -> int:
    from workbench.core.remote.cluster import load_cluster
    from workbench.core.remote.node_engine import NodeSpec
    from workbench.core.remote.ssh import parse_target
    from workbench.faces.nodes import NodeLaunch, run_headless_nodes

    if command:
        raise UsageError("workbench --cluster: the commands come from the cluster file, not after --")
    cluster = load_cluster(args.cluster)  # DataFileError: one line with file:line:[key]
    ssh_config = args.ssh_config or cluster.ssh_config
    specs = {n.name: NodeSpec(n.name, parse_target(n.ssh), n.python, ssh_config, dict(n.env), n.role)
             for n in cluster.nodes}
    launches = [NodeLaunch(specs[s.node.name], s.argv, env_delta_of(getattr(args, "env", [])), s.until_exit)
                for s in cluster.steps()]
    args = _with_defaults(args)
    if not getattr(args, "headless", False):
        return _tui_cluster(cluster.name, launches, args)
    return run_headless_nodes(launches, _headless_options(args), settings_from(args),
                              knowledge_base(args.signatures), name=cluster.name)


def _tui_cluster(name: str, launches: list, args: argparse.Namespace) -> int:
    """The TUI with a pane per node: the nodes' engines behind one surface."""
    from workbench.core.engine.engine import session_for
    from workbench.core.knowledge import verdicts as V
    from workbench.core.remote.cluster_engine import ClusterEngine
    from workbench.faces.nodes import connect_nodes, preflight_nodes

    try:
        from workbench.ui.remote import make_remote_app
    except ImportError as exc:
        raise UsageError(f"the TUI is not available: {exc}") from None
    session = session_for(args.session_dir, name=name)
    nodes = list({launch.node.name: launch.node for launch in launches}.values())
    engines = connect_nodes(nodes, session, knowledge_base(args.signatures), settings_from(args), sys.stderr)
    if engines is None:
        session.close()
        return V.EXIT_USAGE
    cluster = ClusterEngine(engines)
    try:
        if not preflight_nodes(engines, launches, args.force, sys.stderr):
            return V.EXIT_PREFLIGHT
        for launch in launches:
            run = cluster.launch_on(launch.node.name, launch.argv, {**launch.node.env, **launch.env_delta})
            if launch.until_exit and (not run.exited.wait(600) or run.returncode != 0):
                sys.stderr.write(f"workbench: error: {launch.node.name}: {' '.join(launch.argv)} exited with {run.returncode}\n")
                return V.EXIT_CODES[V.FAILED]
        panes = sum(1 for launch in launches if not launch.until_exit)
        app = make_remote_app(cluster, name, args.layout or ("compare" if panes <= 2 else "grid"))
        app.sub_title = f"{name}: {', '.join(engines)} over ssh (a pane per node; q stops every node's runs)"
        app.run()
    finally:
        cluster.shutdown()
        session.close()
    return 0


def _with_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """The top-level parser (TUI form) lacks the run options: fill them with their defaults."""
    for key, value in {"layout": None, "json": False, "raw": False, "force": False, "session_dir": None, "quiet": False,
                       "env": [], "cwd": None, "stall_window": None, "startup_timeout": None,
                       "no_smoke": False, "signatures": []}.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    return args
