"""Name the AWS operation of a raw WSGI request, the way the AWS docs name it.

SageMaker speaks the JSON 1.1 protocol: the operation is in the ``X-Amz-Target`` header
(``SageMaker.CreateModelPackage``). S3 is REST: the operation follows from the method,
whether the path names a bucket or an object, and the query/header markers (``?uploads``,
``partNumber``, ``x-amz-copy-source``...). STS and IAM speak the query protocol: a form
body ``Action=AssumeRole&RoleArn=...`` (``query_params`` reads it and puts it back for moto).
"""

from __future__ import annotations

import io
import re
from urllib.parse import parse_qs, unquote

_CREDENTIAL_SCOPE = re.compile(
    r"Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request"
)
# Query-protocol parameters that are secrets: never kept in the request log.
SECRET_PARAMS = frozenset(
    {"WebIdentityToken", "SAMLAssertion", "TokenCode", "Password", "OldPassword", "NewPassword"}
)
_QUERY_PARAMS = "harness.query_params"

# Bucket-level sub-resources (``PUT /bucket?versioning``) -> the suffix of the operation.
_BUCKET_SUBRESOURCES = {
    "versioning": "BucketVersioning",
    "policy": "BucketPolicy",
    "tagging": "BucketTagging",
    "lifecycle": "BucketLifecycleConfiguration",
    "encryption": "BucketEncryption",
    "cors": "BucketCors",
    "acl": "BucketAcl",
    "notification": "BucketNotificationConfiguration",
    "publicAccessBlock": "PublicAccessBlock",
    "ownershipControls": "BucketOwnershipControls",
}


def service_of(environ: dict) -> str:
    """``sagemaker``, ``s3`` or whatever service the SigV4 credential scope names."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("SageMaker."):
        return "sagemaker"
    scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if scope:
        return scope.group("service")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    credential = query.get("X-Amz-Credential", [""])[0]  # presigned URL
    parts = credential.split("/")
    if len(parts) >= 4:
        return parts[3]
    return "s3"


def operation_of(environ: dict) -> tuple[str, str]:
    """Return ``(service, operation)`` for a request, e.g. ``("s3", "UploadPartCopy")``."""
    service = service_of(environ)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return service, target.rsplit(".", 1)[-1]
    if service == "s3":
        return service, s3_operation(environ)
    action = (query_params(environ) or {}).get("Action")
    if action:
        return service, action
    return service, f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')}"


def signature_scope(environ: dict) -> tuple[str | None, str | None]:
    """``(access key id, region)`` of a SigV4-signed request (header or presigned URL)."""
    scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if scope:
        return scope.group("key"), scope.group("region")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    parts = query.get("X-Amz-Credential", [""])[0].split("/")
    if len(parts) >= 3:
        return parts[0], parts[2]
    return None, None


def query_params(environ: dict) -> dict[str, str] | None:
    """The parameters of a query-protocol request (STS, IAM): its form body and query
    string, first value of each; None for other protocols. The body is read once and put
    back as a fresh stream for the application."""
    if _QUERY_PARAMS in environ:
        return environ[_QUERY_PARAMS]
    params = None
    form = environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if not environ.get("HTTP_X_AMZ_TARGET") and service_of(environ) != "s3" and (form or "Action" in query):
        raw = b""
        if form:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            raw = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(raw)
        body = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        params = {k: v[0] for k, v in {**query, **body}.items()}
    environ[_QUERY_PARAMS] = params
    return params


def s3_operation(environ: dict) -> str:
    method = environ.get("REQUEST_METHOD", "GET")
    path = unquote(environ.get("PATH_INFO", "/"))
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    bucket, _, key = path.lstrip("/").partition("/")
    copying = "HTTP_X_AMZ_COPY_SOURCE" in environ

    if not bucket:
        return "ListBuckets"
    if not key:
        return _bucket_operation(method, query)
    if "uploadId" in query:
        if method == "PUT":
            return "UploadPartCopy" if copying else "UploadPart"
        return {
            "POST": "CompleteMultipartUpload",
            "DELETE": "AbortMultipartUpload",
            "GET": "ListParts",
        }.get(method, f"{method}Object")
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    if "tagging" in query:
        return {"GET": "GetObjectTagging", "PUT": "PutObjectTagging"}.get(method, "DeleteObjectTagging")
    if method == "PUT":
        return "CopyObject" if copying else "PutObject"
    return {
        "GET": "GetObject",
        "HEAD": "HeadObject",
        "DELETE": "DeleteObject",
    }.get(method, f"{method}Object")


def _bucket_operation(method: str, query: dict) -> str:
    for marker, suffix in _BUCKET_SUBRESOURCES.items():
        if marker in query:
            verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}.get(method, method)
            return verb + suffix
    if method == "GET":
        if query.get("list-type") == ["2"]:
            return "ListObjectsV2"
        if "uploads" in query:
            return "ListMultipartUploads"
        if "versions" in query:
            return "ListObjectVersions"
        if "location" in query:
            return "GetBucketLocation"
        return "ListObjects"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    return {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}.get(
        method, f"{method}Bucket"
    )
