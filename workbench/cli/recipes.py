"""`workbench replay`, `record` and `recipe check`: experiments written down and replayed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workbench.cli.common import default_settings, env_delta_of, free_port, knowledge_base
from workbench.cli.parser import UsageError
from workbench.cli.run import open_tui
from workbench.cli.sessions import session_path
from workbench.core.knowledge import verdicts as V
from workbench.core.tomlfile import DataFileError, locate


def cmd_recipe_check(args: argparse.Namespace) -> int:
    from workbench.core.record.recipe import load_recipe

    bad = 0
    for path in args.files:
        try:
            recipe = load_recipe(path)
        except DataFileError as exc:
            sys.stderr.write(f"workbench: error: {exc}\n")
            bad += 1
            continue
        problem = expect_problem(recipe.expect)
        if problem:
            line = locate(Path(path).read_text(encoding="utf-8"), "expect")
            sys.stderr.write(f"workbench: error: {DataFileError(str(path), problem, line, 'expect')}\n")
            bad += 1
            continue
        sys.stdout.write(f"{path}: ok ({recipe.name}: {len(recipe.variants)} variant(s), expect {recipe.expect})\n")
    return V.EXIT_USAGE if bad else 0


def expect_problem(expect: str) -> str:
    """Why `expect` can never match (a typo such as "helthy"), or "" when it names a verdict or a finding."""
    from workbench.core.knowledge.records import UNRECOGNISED

    verdicts = (V.HEALTHY, V.FAILED, V.FALSE_READY, V.HUNG, V.EXITED)
    if expect in verdicts or expect == UNRECOGNISED or expect in knowledge_base([]).by_id():
        return ""
    return f"expect {expect!r} is neither a verdict ({', '.join(verdicts)}) nor a known finding id (workbench signatures list)"

def cmd_replay(args: argparse.Namespace) -> int:
    from workbench.core.record.recipe import load_recipe
    from workbench.faces.replay import (
        EXIT_MISMATCH,
        RecipeError,
        attempts_table,
        bisect_limit,
        check_replayable,
        parse_range,
        print_line,
        recipe_settings,
        replay_once,
        run_matrix,
    )

    recipe = load_recipe(args.recipe)
    kb = knowledge_base(args.signatures)
    settings = default_settings()
    try:
        if args.matrix and not (args.headless or args.json) and sys.stdout.isatty():
            check_replayable(recipe)  # a missing secret is said here, not inside the TUI
            return open_tui([], args.layout, kb, recipe_settings(recipe, settings), None, matrix=(recipe, args.python))
        if args.matrix or args.bisect:
            attempts = []

            def progress(attempt) -> None:
                attempts.append(attempt)
                if not args.json:
                    row = attempt.row()
                    under_load = f", {row['output_tok_s']:.1f} output tok/s" if row.get("output_tok_s") else ""
                    print_line(f"{row['variant']:<18} {row['change'] or '-':<34} {row['verdict']} "
                               f"({row['root_cause'] or row['phase']}, {row['seconds'] or 0:.1f}s{under_load})")

            if args.matrix:
                attempts, conclusion = run_matrix(recipe, settings, kb, progress, args.python)
                if args.json:
                    sys.stdout.write(json.dumps({"recipe": recipe.name, "runs": [a.row() for a in attempts],
                                                 "conclusion": conclusion}) + "\n")
                else:
                    sys.stdout.write("\n" + attempts_table(attempts) + f"\nconclusion: {conclusion}\n")
                return 0
            flag, span = args.bisect
            flag = flag if flag.startswith("-") else "--" + flag  # `max-model-len`: argparse eats a leading --
            try:
                low, high, is_int = parse_range(span)
            except ValueError as exc:
                raise UsageError(f"workbench replay --bisect: {exc}") from None
            answer, probes = bisect_limit(recipe, settings, kb, flag, low, high, is_int, args.bisect_step, progress,
                                          args.python)
            shown = None if answer is None else (int(answer) if is_int else answer)
            if args.json:
                sys.stdout.write(json.dumps({"recipe": recipe.name, "flag": flag, "answer": shown,
                                             "probes": [a.row() for a in probes]}) + "\n")
            elif shown is None:
                sys.stdout.write(f"\n{flag}: not healthy even at {span.split('..')[0]}\n")
            else:
                sys.stdout.write(f"\n{flag}: the largest healthy value is {shown} ({len(probes)} probes)\n")
            return 0
        if not args.headless:
            argv, env, _cwd = recipe.resolve(args.variant, args.port or free_port(), python=args.python)
            return open_tui(argv, args.layout, kb, settings, None, env)
        attempt = replay_once(recipe, settings, kb, args.variant, port=args.port, quiet=False, stream=sys.stdout,
                              python=args.python)
    except RecipeError as exc:
        raise UsageError(f"workbench: {exc}") from None
    result = attempt.result
    if attempt.load and not args.json:
        from workbench.core.probes.load import report_text

        sys.stdout.write(report_text(attempt.load) if attempt.load.get("completed") else
                         f"load: {attempt.load.get('error') or attempt.load.get('errors')}\n")
    if args.json:
        sys.stdout.write(json.dumps({**attempt.row(), "expect": recipe.expect, "matched": attempt.matched,
                                     "smokes": attempt.smokes, "load": attempt.load}) + "\n")
    else:
        sys.stdout.write(f"recipe {recipe.name}: expected {recipe.expect}, got {result.get('verdict')}"
                         f"{' (' + (result.get('root_cause') or {}).get('id', '') + ')' if result.get('root_cause') else ''}"
                         f": {'matched' if attempt.matched else 'NOT matched'}\n")
    return 0 if attempt.matched else EXIT_MISMATCH

def cmd_record(args: argparse.Namespace, command: list[str]) -> int:
    from workbench.core.record.recipe import recipe_from_run, recipe_toml
    from workbench.core.record.session import read_events, write_private

    if command:
        recipe = recipe_from_run(args.name or Path(args.output).stem, command, env_delta_of(args.env), None,
                                 expect=args.expect or "healthy")
    elif args.session:
        directory = session_path(args.session)
        started = [e for e in read_events(directory) if e.get("kind") == "run_started"]
        if args.run:
            started = [e for e in started if e.get("run") == args.run]
        if not started:
            raise UsageError(f"workbench record: no run {args.run or ''} in {directory}")
        event = started[-1]
        recorded = directory / "runs" / event["run"] / "recipe.toml"
        if recorded.exists() and not args.expect and not args.name:
            write_private(Path(args.output), recorded.read_text())
            sys.stdout.write(f"{args.output}\n")
            return 0
        summary_path = directory / "runs" / event["run"] / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        expect = args.expect or ((summary.get("root_cause") or {}).get("id") or summary.get("verdict") or "healthy")
        recipe = recipe_from_run(args.name or Path(args.output).stem, event.get("argv", []),
                                 event.get("env_delta", {}), event.get("cwd"), expect=expect)
    else:
        raise UsageError("workbench record: give `-- CMD ...` or --session DIR")
    write_private(Path(args.output), recipe_toml(recipe))
    sys.stdout.write(f"{args.output}\n")
    return 0
