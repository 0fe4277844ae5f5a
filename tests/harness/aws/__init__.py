"""A SageMaker + S3 endpoint for tests: moto 5.2.5 in server mode, corrected where it
deviates from the AWS API reference, with fault injection and a request log. STS and IAM
are served too: several accounts (by access key: STS AssumeRole checks the role's trust
policy) and regions (by SigV4 scope) share one endpoint.

- ``server.AwsServer``: the endpoint (threaded werkzeug server on 127.0.0.1,
  connections kept between requests as AWS keeps them).
- ``corrections/``: the moto corrections, one module per area, each citing the API docs.
- ``traffic``: middleware naming every request's operation, applying fault rules
  (``faults``), logging bytes in/out, and the JSON control API under ``/_harness/``.
- ``quota``: quota mode, SageMaker's request rate limit per account and region (token buckets).
- ``fixtures``: the pytest fixtures ``aws_server`` and ``aws`` (usage in its docstring).
- ``python -m harness.aws --port N``: the same endpoint in the foreground (demo, bench).
"""
