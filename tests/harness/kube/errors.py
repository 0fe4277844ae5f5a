"""Kubernetes `Status` failures, shaped as the apiserver sends them.

Clients (kopf, the kubernetes client, kubectl) decide what to do from `code` and
`reason`, and show `message`; `details.causes` carries field errors for 422 Invalid.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A failed request: rendered as a `v1 Status` with the HTTP status `code`."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def qualified(group: str, plural: str) -> str:
    """`modelpackages.registry.mlops.dev`, or `namespaces` for the core group."""
    return f"{plural}.{group}" if group else plural


def not_found(group: str, plural: str, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{qualified(group, plural)} "{name}" not found',
        {"name": name, "group": group, "kind": plural},
    )


def already_exists(group: str, plural: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified(group, plural)} "{name}" already exists',
        {"name": name, "group": group, "kind": plural},
    )


def conflict(group: str, plural: str, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(group, plural)} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        {"name": name, "group": group, "kind": plural},
    )


def invalid(group: str, kind: str, name: str, causes: list[dict[str, str]]) -> ApiError:
    """422 Invalid; `causes` are {reason, field, message} as in `metav1.StatusCause`."""
    summary = ", ".join(f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes)
    what = f"{kind}.{group}" if group else kind
    noun = f'{what} "{name}"' if name else what
    return ApiError(
        422,
        "Invalid",
        f"{noun} is invalid: {summary}",
        {"name": name, "group": group, "kind": kind, "causes": causes},
    )


def patch_rejected(detail: str) -> ApiError:
    """A JSON patch that cannot be applied (failed `test`, missing path): 422 as the apiserver."""
    return ApiError(
        422,
        "Invalid",
        f"the server rejected our request due to an error in our request: {detail}",
        {"causes": [{"reason": "FieldValueInvalid", "message": detail, "field": ""}]},
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f'application/json-patch+json, application/merge-patch+json (got "{content_type}")',
    )


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def path_not_found(path: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f"the server could not find the requested resource ({path})",
        {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]},
    )
