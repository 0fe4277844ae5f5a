"""Run the corrected SageMaker + S3 endpoint in the foreground.

    PYTHONPATH=tests python -m harness.aws --port 5055

Then point boto3 at it (AWS_ENDPOINT_URL=http://127.0.0.1:5055, AWS_REGION=us-east-2,
dummy keys) and drive faults/counters through /_harness/ (see harness.aws.traffic).
"""

from __future__ import annotations

import argparse
import sys

from .server import REGION, AwsServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.aws", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5055, help="port (default 5055; 0 picks a free one)")
    parser.add_argument(
        "--status-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="time a new model package spends Pending/InProgress (default 0)",
    )
    args = parser.parse_args(argv)
    if args.status_delay < 0:
        parser.error("--status-delay: must be >= 0")
    server = AwsServer(host=args.host, port=args.port)
    server.config.set_status_delay(args.status_delay)
    try:
        server.serve_forever_announcing(
            lambda url: print(
                f"SageMaker/S3 endpoint on {url} (region {REGION}); control API {url}/_harness/",
                flush=True,
            )
        )
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
