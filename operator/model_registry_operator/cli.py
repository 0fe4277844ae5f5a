"""`model-registry-operator` console script."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
from collections.abc import Mapping
from typing import get_args

from .metrics import DEFAULT_ADDRESS, parse_address
from .settings import DeletionPolicy, Settings


class CommandParser(argparse.ArgumentParser):
    """The top-level parser; `commands` holds each command's own parser, which reports
    that command's errors with its usage."""

    commands: dict[str, argparse.ArgumentParser]


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="model-registry-operator",
        description="Reconcile ModelPackageGroup, ModelPackage and Model resources into the SageMaker Model Registry.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run", help="run the operator against the current kubeconfig or in-cluster account"
    )
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NAMESPACE",
        help="watch this namespace (repeatable)",
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="watch every namespace (the default)"
    )
    run.add_argument("--artifact-bucket", help="S3 bucket artifacts are copied to [MRO_ARTIFACT_BUCKET]")
    run.add_argument(
        "--artifact-prefix",
        help="key prefix inside the artifact bucket (default model-registry) [MRO_ARTIFACT_PREFIX]",
    )
    run.add_argument("--resync-seconds", help="period of the drift resync (default 300) [MRO_RESYNC_SECONDS]")
    run.add_argument(
        "--deletion-policy",
        choices=get_args(DeletionPolicy),
        help="default deletionPolicy for resources that set none (default Delete) [MRO_DELETION_POLICY]",
    )
    run.add_argument(
        "--allow-http",
        action="store_true",
        default=None,
        help="allow plain http:// artifact sources [MRO_ALLOW_HTTP]",
    )
    run.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="liveness endpoint URL (default %(default)s; empty: off)",
    )
    run.add_argument(
        "--metrics",
        metavar="ADDR:PORT",
        help=f"serve Prometheus metrics at http://ADDR:PORT/metrics (default {DEFAULT_ADDRESS}; "
        "empty: off) [MRO_METRICS]",
    )
    run.add_argument(
        "--instance",
        help="this operator's name in the identity <instance>/<namespace>/<name> it marks SageMaker objects "
        "with; clusters sharing an AWS account set different ones (default default) [MRO_INSTANCE]",
    )
    run.add_argument(
        "--sagemaker-rate",
        metavar="PER_SECOND",
        help="SageMaker requests per second per AWS account and region (the account's quota); the operator "
        "stays below it and slows down further when SageMaker throttles (default: no ceiling, only slowing "
        "down on throttling; 0 or off: no limiter) [MRO_SAGEMAKER_RATE]",
    )
    run.add_argument(
        "--shards",
        metavar="N",
        help="split the objects into N shards, each reconciled by the replica holding its Lease: every "
        "replica is active (normally N = the replica count; replaces --peering; default 1: no sharding) "
        "[MRO_SHARDS]",
    )
    run.add_argument(
        "--peering", default=None, help="kopf peering name (several replicas, one active; not with --shards)"
    )
    run.add_argument("--verbose", action="store_true", help="debug logging")
    validate = commands.add_parser(
        "validate",
        help="check manifests offline as the cluster and the operator would (for pull-request checks)",
        description="Check ModelPackageGroup, ModelPackage and Model manifests offline with the CRD schema "
        "(types, required fields, enums, patterns, lengths), the CRD's CEL rules and the operator's own "
        "validation, and metadata.name. Documents of other API groups are skipped.",
        epilog="Prints one line per problem (FILE: Kind/name: field: message; a YAML syntax error as "
        "FILE: line N: message) and a summary on stderr. Exit status: 0 no problem, 1 any problem "
        "(including a missing or unreadable file), 2 usage error. Not checked: CEL transition rules "
        "(those using oldSelf: immutable fields such as modelPackageGroupName or spec.artifacts, "
        "append-only additionalInferenceSpecifications), which compare an update with the object stored "
        "in the cluster and cannot apply to a file; and references to other objects "
        "(modelPackageGroupRef, modelPackageRef), which may live elsewhere.",
    )
    validate.add_argument(
        "-f",
        "--filename",
        action="append",
        dest="filenames",
        metavar="PATH",
        required=True,
        help="a file, a directory (its *.yaml, *.yml and *.json files, recursively) or - for stdin; "
        "repeatable; a file may hold several YAML documents",
    )
    parser.commands = {"run": run, "validate": validate}
    return parser


def version() -> str:
    try:
        return importlib.metadata.version("model-registry-operator")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "(not installed)"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command's own parser, with its usage, not the top level's
        parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "validate":
        from .validate import run as validate  # imported late: the API types are not needed for --help

        return validate(args.filenames)
    if args.command != "run":
        parser.print_help(sys.stderr)
        print("model-registry-operator: name a command: run or validate", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env(
            artifact_bucket=args.artifact_bucket,
            artifact_prefix=args.artifact_prefix.strip("/") if args.artifact_prefix else None,
            resync_seconds=args.resync_seconds,
            deletion_policy=args.deletion_policy,
            instance=args.instance,
            sagemaker_rate=args.sagemaker_rate,
            shards=args.shards,
            allow_http=args.allow_http,
            namespaces=tuple(args.namespaces or ()),
            all_namespaces=not args.namespaces,
        )
        metrics = metrics_address(args.metrics, os.environ)
        if args.peering and settings.shards > 1:
            # peering pauses all replicas but one; sharding keeps every replica active on its share
            raise ValueError(
                f"--peering cannot be combined with {settings.shards} shards: sharding replaces peering "
                "(every replica is active and takes over a dead one's shards); drop --peering or set MRO_SHARDS=1"
            )
    except ValueError as exc:
        print(f"model-registry-operator: invalid setting: {exc}", file=sys.stderr)
        return 2
    from .main import run_operator  # imported late: kopf is heavy and not needed for --help

    return run_operator(
        settings, liveness=args.liveness, peering=args.peering, verbose=args.verbose, metrics_address=metrics
    )


def metrics_address(flag: str | None, env: Mapping[str, str]) -> tuple[str, int] | None:
    """--metrics, else MRO_METRICS (set and empty: off, unlike the other MRO_* variables, where
    empty means unset), else the default."""
    if flag is not None:
        name, value = "--metrics", flag
    elif "MRO_METRICS" in env:
        name, value = "MRO_METRICS", env["MRO_METRICS"]
    else:
        name, value = "--metrics", DEFAULT_ADDRESS
    try:
        return parse_address(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


if __name__ == "__main__":
    sys.exit(main())
