"""`workbench attach-ray [ADDRESS]`: the vLLM actors and workers of a running Ray cluster, shown
like runs (state, node, PID, phase, findings, root cause) from Ray's State API."""

from __future__ import annotations

import argparse
import json
import sys

from workbench.cli.common import knowledge_base
from workbench.core.knowledge import verdicts as V


def cmd_attach_ray(args: argparse.Namespace) -> int:
    from workbench.core.knowledge.diagnosis import Recogniser
    from workbench.core.remote.raycluster import RayUnavailable, actor_log, read_cluster

    recogniser = Recogniser(knowledge_base(args.signatures))
    try:
        if args.follow:  # one actor's output as it comes, recognised lines marked
            return _follow(args, recogniser, actor_log)
        view = read_cluster(args.address, recogniser, everything=args.all, tail=args.lines)
    except RayUnavailable as exc:
        sys.stderr.write(f"workbench attach-ray: {exc}\n")
        return V.EXIT_USAGE
    if args.json:
        sys.stdout.write(json.dumps(view.to_dict(), default=str) + "\n")
        return 0
    out = sys.stdout
    out.write(f"Ray nodes: {len(view.nodes)}\n")
    for node in view.nodes:
        out.write(f"  {str(node.get('node_id'))[:12]}  {node.get('node_ip')}  {node.get('state')}"
                  f"{'  head' if node.get('is_head_node') else ''}\n")
    out.write(f"vLLM actors: {len(view.actors)}  (workers in the cluster: {len(view.workers)})\n")
    for actor in view.actors:
        out.write(f"  {actor.actor_id[:12]}  {actor.class_name}  {actor.state}  node {actor.node_ip or '?'}"
                  f"  PID {actor.pid}  phase {actor.analysis.get('last_phase') or '-'}\n")
        root = actor.analysis.get("root_cause")
        if root:
            out.write(f"    root cause: {root['title']}  [{root['id']}]\n      {root['line'][:200]}\n")
        for line in actor.log[-args.show:]:
            out.write(f"    | {line}\n")
    return 0


def _follow(args: argparse.Namespace, recogniser, actor_log) -> int:  # noqa: ANN001 - late imports
    from workbench.core.knowledge.analyze import analyze_text

    seen: set[str] = set()
    for line in actor_log(args.address, args.follow, follow=True, tail=args.lines):
        found = analyze_text(line + "\n", recogniser).to_dict()["findings"]
        mark = next((f for f in found if f["severity"] in ("error", "warning")), None)
        sys.stdout.write(("✖ " if mark and mark["severity"] == "error" else "▲ " if mark else "  ") + line + "\n")
        if mark and mark["id"] not in seen:
            seen.add(mark["id"])
            sys.stdout.write(f"── {mark['severity']}: {mark['title']}\n")
        sys.stdout.flush()
    return 0
