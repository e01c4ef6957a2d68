"""`workbench analyze`, `compare` and `signatures`: reading logs and runs offline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workbench.cli.common import knowledge_base
from workbench.cli.parser import UsageError
from workbench.core.knowledge import verdicts as V


def cmd_analyze(args: argparse.Namespace) -> int:
    from workbench.core.knowledge.analyze import LogInputError, analyze_path
    from workbench.core.knowledge.diagnosis import Recogniser

    kb = knowledge_base(args.signatures)
    recogniser = Recogniser(kb)
    results = []
    try:
        for path in args.logs:
            results.extend(analyze_path(path, recogniser))
    except LogInputError as exc:
        sys.stderr.write(f"workbench analyze: error: {exc}\n")
        return V.EXIT_USAGE
    dicts = [with_community_search(r.to_dict(), kb) for r in results]
    if args.json:
        sys.stdout.write(json.dumps(dicts[0] if len(dicts) == 1 else dicts, indent=None) + "\n")
    else:
        from workbench.faces.headless import (
            summary_text,  # the engine and httpx: not needed for --json
        )

        for d in dicts:
            sys.stdout.write(f"== {d['source']} ({d['lines']} lines)\n")
            sys.stdout.write(summary_text({**d, "reason": analysis_reason(d)}, sys.stdout.isatty()))
            if d.get("community"):
                sys.stdout.write(community_text(d["community"]) + "\n")
    worst = max((V.EXIT_CODES[d["verdict"]] for d in dicts), default=0)
    return worst

def with_community_search(d: dict, kb) -> dict:  # noqa: ANN001 - the knowledge base
    """Add the issue search for the root cause (read around it in the log when it is a file)."""
    from workbench.core.knowledge.community import search_for_log

    subject = (d.get("root_cause") or {}).get("id")
    platform = next((s.platform for s in kb.signatures if s.id == subject), "any")
    source = d.get("source", "")
    search = search_for_log(d, source if Path(source).is_file() else None, platform)
    if search is not None:
        d["community"] = search.to_dict()
    return d


def community_text(search: dict) -> str:
    return "\n".join([f"search: {search['phrase']}", *(f"  {repo}: {url}" for repo, url in search["urls"].items())])


def analysis_reason(d: dict) -> str:
    hang = f"; {d['hang']['says']}" if d.get("hang") else ""  # how long, by the log's own clock
    return f"last phase reached: {d['last_phase']}; {len(d['findings'])} finding(s){hang}"

def cmd_compare(args: argparse.Namespace) -> int:
    from workbench.core.knowledge.analyze import LogInputError, analyze_path
    from workbench.core.knowledge.compare import compare
    from workbench.core.knowledge.diagnosis import Recogniser

    recogniser = Recogniser(knowledge_base(args.signatures))
    results = []
    for path in (args.first, args.second):
        target = Path(path) / "output.log" if (Path(path) / "output.log").exists() else Path(path)
        try:
            results.append(analyze_path(str(target), recogniser)[-1].to_dict())
        except LogInputError as exc:
            sys.stderr.write(f"workbench compare: error: {exc}\n")
            return V.EXIT_USAGE
    report = compare(results[0], results[1], args.first, args.second)
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
        return 0
    for name in (args.first, args.second):
        row = report[name]
        root = f", root cause {row['root_cause']}" if row["root_cause"] else ", no root cause"
        sys.stdout.write(f"{name}: {row['verdict']}, last phase {row['last_phase']}{root}\n")
    for name in (args.first, args.second):  # only what differs, and only the parts that have something
        parts = [f"{what} {', '.join(report[key][name])}" for what, key in
                 (("phases", "phases_only_in"), ("findings", "findings_only_in")) if report[key][name]]
        if parts:
            sys.stdout.write(f"only in {name}: {'; '.join(parts)}\n")
    sys.stdout.write(f"conclusion: {report['conclusion']}\n")
    return 0

def cmd_signatures(args: argparse.Namespace) -> int:
    from workbench.core.knowledge import signatures as S

    kb = knowledge_base(args.signatures)
    if args.action == "check":
        for path in args.paths:
            S.load_file(Path(path))
            sys.stdout.write(f"{path}: ok\n")
        return 0
    if args.action == "export":
        # one pattern per line: `grep -E -f` compatible for the patterns that are plain ERE
        for sig in kb.signatures:
            for pattern in sig.patterns:
                sys.stdout.write(pattern + "\n")
        return 0
    if args.action == "test":
        if not args.paths:
            raise UsageError("workbench signatures test LOG: name a log file")
        return signatures_test(kb, args.paths, args.json)
    if args.json:
        sys.stdout.write(json.dumps([s.to_dict() for s in kb.signatures], indent=2) + "\n")
        return 0
    width = max((len(s.id) for s in kb.signatures), default=10)
    for sig in sorted(kb.signatures, key=lambda s: (s.origin, s.id)):
        flags = " cascade" if sig.cascade else (" benign" if sig.benign else "")
        source = sig.sources[0] if sig.sources else ""
        sys.stdout.write(f"{sig.id:<{width}}  {sig.severity:<7}{flags:<8}  {sig.title}  [{source}]\n")
    sys.stdout.write(f"{len(kb.signatures)} signatures, {len(kb.phase_markers)} phase markers from {len(kb.files)} files\n")
    return 0

def signatures_test(kb, paths: list[str], as_json: bool) -> int:
    from workbench.core.knowledge.analyze import LogInputError
    from workbench.core.knowledge.diagnosis import Recogniser
    from workbench.core.logs.linesplit import LineSplitter
    from workbench.core.logs.text import display_lines

    recogniser = Recogniser(kb)
    hits: dict[str, list[tuple[int, str]]] = {}
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise LogInputError(f"{path}: cannot read ({exc.strerror})") from None
        splitter = LineSplitter()
        _s, raw = splitter.feed(data)
        raw += splitter.flush()[1]
        lines = display_lines(raw)
        for index, pattern_index in recogniser.matcher.scan(lines):
            kind, target = recogniser.targets[pattern_index]
            name = target.id if kind == "signature" else f"{kind}:{target}"
            hits.setdefault(name, []).append((index + 1, lines[index]))
    if as_json:
        sys.stdout.write(json.dumps({k: [{"line": n, "text": t} for n, t in v] for k, v in hits.items()}) + "\n")
        return 0
    for name in sorted(hits):
        sys.stdout.write(f"{name}: {len(hits[name])} line(s)\n")
        for number, text in hits[name][:5]:
            sys.stdout.write(f"  {number}: {text[:160]}\n")
    return 0
