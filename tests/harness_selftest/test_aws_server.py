"""The SageMaker/S3 endpoint itself: fixture, reset, request log, control API, launcher."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

TESTS_DIR = Path(__file__).resolve().parents[1]


def test_sagemaker_and_s3_answer_over_http(aws):
    assert aws.endpoint_url.startswith("http://127.0.0.1:")
    arn = aws.client("sagemaker").create_model_package_group(ModelPackageGroupName="churn")[
        "ModelPackageGroupArn"
    ]
    assert arn == f"arn:aws:sagemaker:us-east-2:{aws.account_id}:model-package-group/churn"
    aws.make_bucket("registry")
    s3 = aws.client("s3")
    s3.put_object(Bucket="registry", Key="a/b.txt", Body=b"hello")
    assert s3.get_object(Bucket="registry", Key="a/b.txt")["Body"].read() == b"hello"


def test_env_lets_a_plain_boto3_client_in_a_subprocess_reach_the_server(aws):
    aws.client("sagemaker").create_model_package_group(ModelPackageGroupName="from-test")
    script = (
        "import boto3\n"
        "groups = boto3.client('sagemaker').list_model_package_groups()\n"
        "print(groups['ModelPackageGroupSummaryList'][0]['ModelPackageGroupName'])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, **aws.env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "from-test"


def test_reset_between_tests_forgets_objects_faults_and_requests(aws):
    sm = aws.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="transient")
    aws.faults.throttle("ListModelPackageGroups", count=5)
    aws.set_status_delay(3)
    aws.reset()
    assert sm.list_model_package_groups()["ModelPackageGroupSummaryList"] == []
    assert aws.faults.rules() == []
    assert aws.counts() == {"ListModelPackageGroups": 1}
    assert aws.server.config.status_delay_seconds == 0


@pytest.mark.parametrize(
    "call, operation",
    [
        (lambda s3: s3.list_buckets(), "ListBuckets"),
        (lambda s3: s3.head_bucket(Bucket="art"), "HeadBucket"),
        (lambda s3: s3.list_objects_v2(Bucket="art", Prefix="x"), "ListObjectsV2"),
        (lambda s3: s3.put_object(Bucket="art", Key="k", Body=b"12345"), "PutObject"),
        (lambda s3: s3.head_object(Bucket="art", Key="src"), "HeadObject"),
        (lambda s3: s3.get_object(Bucket="art", Key="src"), "GetObject"),
        (lambda s3: s3.copy_object(Bucket="art", Key="c", CopySource="art/src"), "CopyObject"),
        (lambda s3: s3.delete_object(Bucket="art", Key="src"), "DeleteObject"),
        (lambda s3: s3.create_multipart_upload(Bucket="art", Key="m"), "CreateMultipartUpload"),
    ],
)
def test_s3_operations_are_named_as_in_the_api_reference(aws, call, operation):
    aws.make_bucket("art")
    aws.client("s3").put_object(Bucket="art", Key="src", Body=b"source")
    call(aws.client("s3"))
    assert aws.requests()[-1].operation == operation


def test_multipart_copy_is_logged_part_by_part_without_body_bytes(aws):
    aws.make_bucket("art")
    s3 = aws.client("s3")
    payload = os.urandom(6 * 1024 * 1024)
    s3.put_object(Bucket="art", Key="big", Body=payload)
    upload = s3.create_multipart_upload(Bucket="art", Key="copy")["UploadId"]
    part1 = s3.upload_part_copy(
        Bucket="art",
        Key="copy",
        UploadId=upload,
        PartNumber=1,
        CopySource="art/big",
        CopySourceRange=f"bytes=0-{5 * 1024 * 1024 - 1}",
    )
    part2 = s3.upload_part(Bucket="art", Key="copy", UploadId=upload, PartNumber=2, Body=b"tail")
    s3.complete_multipart_upload(
        Bucket="art",
        Key="copy",
        UploadId=upload,
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": part1["CopyPartResult"]["ETag"]},
                {"PartNumber": 2, "ETag": part2["ETag"]},
            ]
        },
    )
    s3.create_multipart_upload(Bucket="art", Key="aborted")
    uploads = s3.list_multipart_uploads(Bucket="art")["Uploads"]
    s3.abort_multipart_upload(Bucket="art", Key="aborted", UploadId=uploads[-1]["UploadId"])

    ops = [r.operation for r in aws.requests()]
    assert ops[1:] == [
        "PutObject",
        "CreateMultipartUpload",
        "UploadPartCopy",
        "UploadPart",
        "CompleteMultipartUpload",
        "CreateMultipartUpload",
        "ListMultipartUploads",
        "AbortMultipartUpload",
    ]
    (copy,) = aws.requests("UploadPartCopy")
    (put,) = aws.requests("PutObject")
    assert copy.bytes_in == 0 and copy.status == 200
    assert put.bytes_in >= len(payload)
    assert aws.requests("UploadPart")[0].bytes_in >= 4


def test_request_log_counts_bytes_out(aws):
    aws.make_bucket("art")
    s3 = aws.client("s3")
    s3.put_object(Bucket="art", Key="k", Body=b"x" * 1000)
    s3.get_object(Bucket="art", Key="k")["Body"].read()
    (get,) = aws.requests("GetObject")
    assert get.bytes_out == 1000 and get.bytes_in == 0
    assert aws.count("GetObject") == 1 and aws.count("PutObject") == 1


def _control(aws, method, route, body=None):
    request = urllib.request.Request(
        f"{aws.endpoint_url}/_harness/{route}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_control_api_drives_faults_config_requests_and_reset(aws):
    sm = aws.client("sagemaker")
    status, rule = _control(
        aws, "POST", "faults", {"operation": "ListModelPackageGroups", "kind": "throttle", "count": 1}
    )
    assert status == 200 and rule["kind"] == "throttle"
    with pytest.raises(ClientError) as raised:
        sm.list_model_package_groups()
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    sm.list_model_package_groups()

    status, log = _control(aws, "GET", "requests")
    assert log["counts"] == {"ListModelPackageGroups": 2}
    assert [r["fault"] for r in log["requests"]] == ["throttle", None]

    assert _control(aws, "POST", "config", {"statusDelaySeconds": 1.5}) == (200, {"statusDelaySeconds": 1.5})
    assert aws.server.config.status_delay_seconds == 1.5

    sm.create_model_package_group(ModelPackageGroupName="g")
    assert _control(aws, "POST", "reset")[0] == 200
    assert sm.list_model_package_groups()["ModelPackageGroupSummaryList"] == []
    assert _control(aws, "GET", "config")[1] == {"statusDelaySeconds": 0.0}


@pytest.mark.parametrize(
    "route, body, field",
    [
        ("faults", {"operation": "PutObject", "kind": "explode", "count": 1}, "kind"),
        ("faults", {"operation": "PutObject", "kind": "throttle"}, "count or probability"),
        ("faults", {"operation": "PutObject", "kind": "throttle", "count": 1, "colour": 1}, "colour"),
        ("faults", {"operation": "PutObject", "kind": "latency", "count": 1}, "seconds"),
        ("config", {"statusDelaySeconds": -1}, "statusDelaySeconds"),
        ("config", {"delay": 1}, "delay"),
    ],
)
def test_control_api_refuses_bad_input_naming_the_field(aws, route, body, field):
    status, answer = _control(aws, "POST", route, body)
    assert status == 400
    assert answer["error"].startswith(field)


def test_control_api_unknown_route_is_404(aws):
    assert _control(aws, "GET", "nothing")[0] == 404


def test_launcher_serves_in_its_own_process(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.aws", "--port", "0", "--status-delay", "0"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = process.stdout.readline()
        url = banner.split(" on ", 1)[1].split(" ", 1)[0]
        client = boto3.client(
            "sagemaker",
            endpoint_url=url,
            region_name="us-east-2",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_model_package_group(ModelPackageGroupName="demo")
        with urllib.request.urlopen(f"{url}/_harness/requests", timeout=10) as response:
            assert json.load(response)["counts"] == {"CreateModelPackageGroup": 1}
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_launcher_reports_a_bad_flag_without_traceback():
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}
    out = subprocess.run(
        [sys.executable, "-m", "harness.aws", "--status-delay", "-2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "--status-delay" in out.stderr and "Traceback" not in out.stderr


def test_launcher_reports_a_busy_port_without_traceback():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}
        out = subprocess.run(
            [sys.executable, "-m", "harness.aws", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 1
    assert f"Port {port} is in use" in out.stderr and "Traceback" not in out.stderr


def test_the_backend_of_a_host_is_found_once_and_is_moto_s_own(monkeypatch):
    """The dispatcher remembers which backend serves a host (moto searches for it on every
    request, listing its package directory under a lock): same answer, searched once."""
    import moto.backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from harness.aws.server import DispatcherApplication

    searches = []
    list_modules = moto.backends.list_of_moto_modules
    monkeypatch.setattr(moto.backends, "list_of_moto_modules", lambda: searches.append(1) or list_modules())
    hosts = ["api.sagemaker.us-east-2.amazonaws.com", "s3.us-east-2.amazonaws.com", "sts.amazonaws.com"]
    remembering = DispatcherApplication(create_backend_app)
    found = [remembering.get_backend_for_host(host) for host in hosts * 3]
    assert len(searches) == len(hosts)
    assert found == [
        DomainDispatcherApplication(create_backend_app).get_backend_for_host(h) for h in hosts * 3
    ]
    assert found[:3] == ["sagemaker", "s3", "sts"]


def _signed(service: str, target: str | None = None) -> dict[str, str]:
    """Headers of a request as boto3 sends it (moto checks who signed, not the signature)."""
    credential = f"AKIAEXAMPLE/20260101/us-east-2/{service}/aws4_request"
    headers = {"Authorization": f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=0"}
    if target:
        headers |= {"X-Amz-Target": f"SageMaker.{target}", "Content-Type": "application/x-amz-json-1.1"}
    return headers


def _connect(aws) -> http.client.HTTPConnection:
    host, port = aws.endpoint_url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=10)


def test_a_connection_is_kept_between_requests_as_aws_keeps_it(aws):
    """HTTP/1.1 persistent connections: SageMaker and S3 requests with bodies, and one
    refused by a fault, one after the other on one socket; each answer is whole and the
    next request is read from where the last body ended."""
    connection = _connect(aws)
    aws.make_bucket("kept")
    aws.faults.throttle("ListModelPackageGroups", count=1)
    group = json.dumps({"ModelPackageGroupName": "kept"})
    requests = [
        ("POST", "/", group, _signed("sagemaker", "CreateModelPackageGroup"), 200),
        ("PUT", "/kept/a.txt", b"x" * 70_000, _signed("s3"), 200),
        ("GET", "/kept/a.txt", None, _signed("s3"), 200),
        ("POST", "/", json.dumps({}), _signed("sagemaker", "ListModelPackageGroups"), 400),
        ("POST", "/", json.dumps({}), _signed("sagemaker", "ListModelPackageGroups"), 200),
    ]
    sockets, answers = set(), []
    for method, path, body, headers, _ in requests:
        connection.request(method, path, body, headers)
        sockets.add(connection.sock)
        response = connection.getresponse()
        answers.append((response.status, response.getheader("Connection"), len(response.read())))
    assert [status for status, _, _ in answers] == [expected for *_, expected in requests]
    assert [kept for _, kept, _ in answers] == [None] * len(requests)
    assert answers[2][2] == 70_000
    assert len(sockets) == 1
    connection.close()
    assert aws.counts()["ListModelPackageGroups"] == 2


def test_a_chunked_request_is_served_and_its_connection_closed(aws):
    """A body without a Content-Length (chunked) has no end the server can find before
    the app reads it; its connection closes after the answer, as werkzeug's always did."""
    aws.make_bucket("chunks")
    connection = _connect(aws)
    connection.request("PUT", "/chunks/b.txt", iter([b"ab", b"cd"]), _signed("s3"), encode_chunked=True)
    response = connection.getresponse()
    assert (response.status, response.getheader("Connection")) == (200, "close")
    response.read()
    assert aws.client("s3").get_object(Bucket="chunks", Key="b.txt")["Body"].read() == b"abcd"


def test_a_body_the_app_leaves_unread_is_skipped_before_the_next_request():
    """What the app did not read of a body is discarded up to its Content-Length, not
    taken for the next request line, even when the next request came in the same packet."""
    from werkzeug.serving import make_server

    from harness.aws.server import KeepAliveRequestHandler

    seen = []

    def app(environ, start_response):
        seen.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=KeepAliveRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    body = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n" * 3
    first = b"POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    second = b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as client:
            client.sendall(first + second)  # one packet: both are in the server's buffer at once
            answers = b""
            while answers.count(b"\r\n\r\nok") < 2:
                answers += client.recv(65536) or b"(closed)"
                assert b"(closed)" not in answers, answers
        assert seen == ["/first", "/second"]
    finally:
        server.shutdown()
        server.server_close()
