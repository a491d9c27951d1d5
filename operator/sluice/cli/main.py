"""Entry point of the `sluice` console script."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sluice", description="Sluice: browser tests as Kubernetes Jobs, through a priority queue.")
    sub = parser.add_subparsers(dest="command", required=True)
    op = sub.add_parser("operator", help="run the operator with the current kubeconfig (or in-cluster credentials)")
    op.add_argument("--kubeconfig", help="path to a kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    op.add_argument("--log-level", default="INFO")
    op.add_argument("--log-format", choices=["json", "text"], default="json")
    args = parser.parse_args(argv)
    if args.command == "operator":
        from ..logs import configure_logging
        from ..operator_main import run_operator
        configure_logging(args.log_level, args.log_format == "json")
        profile = os.environ.get("SLUICE_PROFILE")  # developer aid: cProfile stats written on exit
        profiler = None
        if profile:
            import cProfile
            profiler = cProfile.Profile()
            profiler.enable()
        try:
            asyncio.run(run_operator(args.kubeconfig))
        except KeyboardInterrupt:
            pass
        finally:
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(profile)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
