"""`workbench`: dispatch to a command; every bad input ends here as one line and a non-zero exit."""

from __future__ import annotations

import os
import signal
import sys

from workbench.cli.analysis import cmd_analyze, cmd_compare, cmd_signatures
from workbench.cli.common import attach_errors, knowledge_base
from workbench.cli.parser import UsageError, build_parser, split_command
from workbench.cli.recipes import cmd_recipe_check, cmd_record, cmd_replay
from workbench.cli.run import cmd_demo, cmd_dump, cmd_env, cmd_run, open_tui, start_detachable
from workbench.cli.sessions import cmd_attach, cmd_bundle, cmd_open, cmd_sessions, cmd_stop
from workbench.core.knowledge import verdicts as V
from workbench.core.tomlfile import DataFileError


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "sim":
        from workbench.sim.cli import main as sim_main

        return sim_main(argv[1:])
    options, command = split_command(argv)
    parser = build_parser()
    try:
        if options[:1] == ["help"] or (not options and not command):
            parser.print_help()
            return 0
        args, extra = parser.parse_known_args(options)
        if extra and getattr(args, "command", None) == "signatures" and not any(e.startswith("-") for e in extra):
            args.paths += extra  # `signatures test --signatures DIR LOG`: argparse stops at the option
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if args.version:
            from workbench import __version__

            sys.stdout.write(f"workbench {__version__}\n")
            return 0
        if args.command in (None, "run") and (args.on or args.cluster):
            from workbench.cli.nodes import cmd_run_cluster, cmd_run_on

            return cmd_run_cluster(args, command) if args.cluster else cmd_run_on(args, command)
        if args.command is None:
            if not command:
                parser.print_help()
                return 0
            from workbench.core.engine.settings import Settings

            if args.detachable or args.detach:
                return start_detachable(command, args, Settings(), [], {}, None, None, headless=False)
            return open_tui(command, args.layout, knowledge_base([]), Settings(), None)
        if args.command == "run":
            return cmd_run(args, command)
        if args.command == "env":
            return cmd_env(args, command)
        if args.command == "record":
            return cmd_record(args, command)
        if args.command == "model-check":
            from workbench.cli.model import cmd_model_check

            return cmd_model_check(args, command)
        if command:
            raise UsageError(f"workbench {args.command}: takes no command after --")
        if args.command == "analyze":
            return cmd_analyze(args)
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "signatures":
            return cmd_signatures(args)
        if args.command == "dump":
            return cmd_dump(args)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "sessions":
            return cmd_sessions(args)
        if args.command == "replay":
            return cmd_replay(args)
        if args.command == "recipe":
            return cmd_recipe_check(args)
        if args.command == "open":
            return cmd_open(args)
        if args.command == "bundle":
            return cmd_bundle(args)
        if args.command == "attach":
            return cmd_attach(args)
        if args.command == "stop":
            return cmd_stop(args)
        if args.command in ("metrics", "load", "profile-server"):
            from workbench.cli import perf

            return {"metrics": perf.cmd_metrics, "load": perf.cmd_load,
                    "profile-server": perf.cmd_profile_server}[args.command](args)
        if args.command == "attach-ray":
            from workbench.cli.raycmd import cmd_attach_ray

            return cmd_attach_ray(args)
        parser.print_help()
        return 0
    except UsageError as exc:
        sys.stderr.write(f"{exc}\n")
        return V.EXIT_USAGE
    except DataFileError as exc:
        sys.stderr.write(f"workbench: error: {exc}\n")
        return V.EXIT_USAGE
    except attach_errors() as exc:
        sys.stderr.write(f"workbench: {exc}\n")
        return V.EXIT_USAGE
    except KeyboardInterrupt:
        return V.EXIT_INTERRUPTED
    except BrokenPipeError:  # `workbench analyze LOG | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE

if __name__ == "__main__":
    raise SystemExit(main())
