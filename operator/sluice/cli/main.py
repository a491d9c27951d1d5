"""Entry point of the `sluice` console script (also `kubectl sluice` when linked as kubectl-sluice).

Each user command lives in its own module (`queue`, `stats`, `run`, `cancel`, `logs`,
`artifacts`, `rerun`, `bump`, `clear` for `queue clear`) with a `run(conn, args) -> exit code`;
this module only parses arguments, connects, and turns the failures a user can fix into one line
on stderr (never a stack trace).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys


def _connection_options(default=None) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", default=default,
                        help="path to a kubeconfig (default: $KUBECONFIG, ~/.kube/config)")
    common.add_argument("--context", default=default, help="kubeconfig context to use (default: its current context)")
    common.add_argument("-n", "--namespace", default=default,
                        help="namespace (default: the context's namespace, else default)")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sluice", description="Sluice: browser tests as Kubernetes Jobs, through a priority queue.")
    sub = parser.add_subparsers(dest="command", required=True)
    common = _connection_options()

    op = sub.add_parser("operator", help="run the operator with the current kubeconfig (or in-cluster credentials)")
    op.add_argument("--kubeconfig", help="path to a kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    op.add_argument("--log-level", default="INFO")
    op.add_argument("--log-format", choices=["json", "text"], default="json")

    q = sub.add_parser("queue", parents=[common], help="running and queued executions, in admission order")
    q.add_argument("--queue", help="only this TestQueue")
    q.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    # `sluice queue clear`: its options default to SUPPRESS, so `-n` given before `clear` survives
    qc = q.add_subparsers(dest="queue_action", metavar="{clear}").add_parser(
        "clear", parents=[_connection_options(argparse.SUPPRESS)],
        help="cancel every waiting execution of a queue, after a confirmation (admin: patch on executions)")
    qc.add_argument("--queue", default=argparse.SUPPRESS, help="the TestQueue (default: default)")
    qc.add_argument("--yes", action="store_true", help="do not ask (for scripts)")
    qc.set_defaults(module="sluice.cli.clear")

    s = sub.add_parser("stats", parents=[common], help="admitted/succeeded/failed, wait and run percentiles, throughput")
    s.add_argument("--queue", help="only this TestQueue")
    s.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")

    r = sub.add_parser("run", parents=[common], help="create the executions in a file; with --wait, follow them")
    r.add_argument("-f", "--filename", required=True, help="YAML file with TestExecution documents ('-' for stdin)")
    r.add_argument("--wait", action="store_true", help="follow until every execution finished; exit with the verdict")
    r.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds (exit 3)")

    c = sub.add_parser("cancel", parents=[common], help="cancel an execution (spec.cancel: true)")
    c.add_argument("name")

    rr = sub.add_parser("rerun", parents=[common],
                        help="a new execution NAME-r<N> with the same spec; prints how to follow it")
    rr.add_argument("name")

    b = sub.add_parser("bump", parents=[common], help="change the priority of a waiting execution")
    b.add_argument("name")
    from ..api.execution import Priority
    b.add_argument("--priority", required=True, choices=[p.value for p in Priority])

    lg = sub.add_parser("logs", parents=[common], help="runner pod logs of the latest (or a given) attempt")
    lg.add_argument("name")
    lg.add_argument("--attempt", type=int, help="attempt number (default: the current one)")
    lg.add_argument("-f", "--follow", action="store_true",
                    help="follow the console live (from Redis when SLUICE_REDIS_URL is set, else the pod log)")

    w = sub.add_parser("watch", parents=[common], help="live view: queues with ranks and ETAs, running with progress")
    w.add_argument("name", nargs="?", help="only this execution")
    w.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    w.add_argument("--once", action="store_true", help="draw once and exit")

    a = sub.add_parser("artifacts", parents=[common], help="artifact links, presigned when S3 credentials are at hand")
    a.add_argument("name")

    d = sub.add_parser("dashboard", parents=[common], help="live page on 127.0.0.1: queues, ranks, progress, reports")
    d.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    d.add_argument("--port", type=int, default=8090, help="port on 127.0.0.1 (default 8090)")
    d.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; the chart's in-cluster Deployment uses 0.0.0.0)")
    d.add_argument("--read-only", action="store_true", help="offer no action (cancel, rerun, pause), whatever RBAC allows")
    d.set_defaults(module="sluice.dashboard.server")
    return parser


def _run_operator(args) -> int:
    from ..logs import configure_logging
    from ..operator_main import StartupError, run_operator
    configure_logging(args.log_level, args.log_format == "json")
    profile = os.environ.get("SLUICE_PROFILE")  # developer aid: cProfile stats written on exit
    profiler = None
    if profile:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    try:
        asyncio.run(run_operator(args.kubeconfig))
    except StartupError as exc:
        print(f"sluice operator: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "operator":
        return _run_operator(args)
    from importlib import import_module

    from .connect import CliError, connect
    command = import_module(getattr(args, "module", None) or f"{__package__}.{args.command}")
    try:
        conn = connect(args.kubeconfig, args.context, args.namespace)
        return command.run(conn, args)
    except CliError as exc:
        sys.stdout.flush()
        print(f"sluice {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"sluice {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
