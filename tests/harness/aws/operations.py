"""Name the AWS operation of a raw WSGI request, the way the AWS docs name it.

SageMaker speaks the JSON 1.1 protocol: the operation is in the ``X-Amz-Target`` header
(``SageMaker.CreateModelPackage``). S3 is REST: the operation follows from the method,
whether the path names a bucket or an object, and the query/header markers (``?uploads``,
``partNumber``, ``x-amz-copy-source``...).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")

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
        return scope.group(1)
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
    return service, f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')}"


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
