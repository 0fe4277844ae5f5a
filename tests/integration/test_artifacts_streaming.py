"""A 2 GiB artifact is packed and uploaded with the copying process's peak RSS under 200 MB.

The copy runs in a subprocess so that its peak RSS is its own (the servers live in the
test process). The source is generated on the fly by the local HTTP server and the
destination is the hashing S3 sink (harness.s3sink): moto would hold the 2 GiB in memory.
Nothing of the 2 GiB is ever held in memory or on disk by the test.
"""

import json
import os
import subprocess
import sys

import pytest

from harness.httpserver import FileServer, Generated
from harness.s3sink import S3Sink

SIZE = 2 * 1024**3
RSS_LIMIT = 200 * 1000**2

CHILD = r"""
import json, re, sys
from dataclasses import dataclass
import boto3
from botocore.config import Config
from model_registry_operator.artifacts import copy_artifacts
from model_registry_operator.settings import Settings

@dataclass
class File:
    path: str
    source: str
    sha256: str

@dataclass
class Artifact:
    name: str
    files: list

endpoint, url, sha256 = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                  aws_secret_access_key="testing", config=Config(s3={"addressing_style": "path"}))
files = [File("weights/model.bin", url, sha256), File("config.json", url.replace("model.bin", "config.json"), None)]
result = copy_artifacts([Artifact("model", files)], s3_client=s3, bucket="registry", key_prefix="mro/ns/big/uid",
                        settings=Settings(allow_http=True))
# VmHWM, not getrusage's ru_maxrss: Linux carries the parent's high-water mark across
# fork and exec into ru_maxrss, so a test process holding 500 MB would be blamed on us.
with open("/proc/self/status") as status:
    peak = int(re.search(r"VmHWM:\s+(\d+) kB", status.read()).group(1)) * 1024
print(json.dumps({"result": result, "peak_rss": peak}))
"""


@pytest.mark.slow
def test_two_gib_artifact_streams_with_flat_memory(tmp_path):
    model = Generated(SIZE, seed=2)
    with FileServer() as server, S3Sink() as sink:
        url = server.add("/model.bin", model)
        server.add("/config.json", b'{"layers": 12}')
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        child = subprocess.run(
            [sys.executable, "-c", CHILD, sink.endpoint_url, url, model.sha256()],
            capture_output=True,
            text=True,
            env=env,
            timeout=240,
        )
        assert child.returncode == 0, child.stderr[-3000:]
        report = json.loads(child.stdout.strip().splitlines()[-1])

    (status,) = report["result"]
    stored = sink.objects["mro/ns/big/uid/model/model.tar.gz"]
    assert status["uri"] == "s3://registry/mro/ns/big/uid/model/model.tar.gz"
    assert (status["size"], status["sha256"]) == (stored["size"], stored["sha256"])
    assert status["size"] > SIZE  # stored deflate blocks: random bytes are not compressed
    assert report["peak_rss"] < RSS_LIMIT, f"peak RSS {report['peak_rss'] / 1e6:.0f} MB"
