"""Run the Kubernetes API emulator in the foreground (for `make demo`).

cd tests && python -m harness.kube --port 8001 --kubeconfig /tmp/kubeconfig --crds ../crds
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import signal
import sys
import threading

from .client import KubeApiError
from .cluster import KubeCluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.kube", description=__doc__.strip().splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument(
        "--kubeconfig", type=pathlib.Path, required=True, help="where to write the kubeconfig"
    )
    parser.add_argument(
        "--crds",
        type=pathlib.Path,
        action="append",
        default=[],
        help="a directory of CRD YAML files to apply at start (repeatable)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    for directory in args.crds:
        if not directory.is_dir():
            parser.error(f"--crds {directory}: not a directory")
    cluster = KubeCluster.start_emulator(args.kubeconfig, host=args.host, port=args.port or None)
    try:
        for directory in args.crds:
            for crd in cluster.apply_crds_from(directory):
                print(f"applied CRD {crd['metadata']['name']}", flush=True)
    except (KubeApiError, ValueError) as exc:
        cluster.stop()
        print(f"error: a CRD in {directory} was refused: {exc}", file=sys.stderr)
        return 2
    print(f"Kubernetes API emulator on {cluster.url}; kubeconfig: {args.kubeconfig}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
