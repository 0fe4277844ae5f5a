"""Every condition reason and Event reason the operator writes, defined once.

They are part of the public contract (Argo CD health checks, alerts and people read them):
README's table lists the same words, and tests/unit/test_reasons.py fails when the two differ.
Members are `str`, so they go into conditions, Events and metrics as the plain word.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """The `reason` of the Ready, Reconciling and Stalled conditions (and of the Warning Event
    posted when an object turns Stalled)."""

    # Ready
    SYNCED = "Synced"

    # Reconciling: work under way or an expected wait
    CREATING = "Creating"
    PENDING = "Pending"  # SageMaker's own status of a version or group
    IN_PROGRESS = "InProgress"
    DELETING = "Deleting"
    COPYING_ARTIFACTS = "CopyingArtifacts"
    WAITING_FOR_GROUP = "WaitingForGroup"
    WAITING_FOR_PACKAGE = "WaitingForPackage"
    WAITING_FOR_APPROVAL = "WaitingForApproval"
    WAITING_FOR_VERSIONS = "WaitingForVersions"
    WAITING_FOR_VERSION = "WaitingForVersion"  # spec.modelPackageVersion: not registered yet
    # the object's namespace is not in the operator's namespace index yet (just created): its
    # annotations say which AWS account to use, so nothing is called before they are known
    WAITING_FOR_NAMESPACE = "WaitingForNamespace"
    # Reconciling: retried failures
    THROTTLED = "Throttled"
    SAGEMAKER_UNAVAILABLE = "SageMakerUnavailable"
    SAGEMAKER_UNREACHABLE = "SageMakerUnreachable"
    CONFLICT = "Conflict"
    CREDENTIALS_EXPIRED = "CredentialsExpired"
    CREDENTIALS_UNAVAILABLE = "CredentialsUnavailable"
    # a create answered "already exists": most often our own earlier create whose answer was
    # lost; the next reconcile looks at what exists and whose it is
    CREATE_UNCONFIRMED = "CreateUnconfirmed"
    ARTIFACT_UPLOAD_FAILED = "ArtifactUploadFailed"
    SOURCE_UNREACHABLE = "SourceUnreachable"  # Stalled after timing.SOURCE_STALL_AFTER tries
    INTERNAL_ERROR = "InternalError"  # an operator bug: its log has the traceback

    # Stalled: a person must act
    INVALID_SPEC = "InvalidSpec"
    ALREADY_EXISTS = "AlreadyExists"  # another object's (or nobody's, not matching) group or model
    PACKAGE_FAILED = "PackageFailed"
    GROUP_FAILED = "GroupFailed"
    VERSIONS_REMAIN = "VersionsRemain"
    SPEC_MISMATCH = "SpecMismatch"  # an adopted version differs from a member the spec sets and cannot change
    VERSION_GONE = "VersionGone"  # an adopted version was deleted in SageMaker
    # accounts (accounts.py): the namespace's role cannot be assumed (STS refused, or the
    # annotation is not usable); the namespace now maps to another account than the one the
    # object's SageMaker object is in
    ASSUME_ROLE_FAILED = "AssumeRoleFailed"
    ACCOUNT_CHANGED = "AccountChanged"
    # artifacts
    UNKNOWN_ARTIFACT = "UnknownArtifact"
    INVALID_SOURCE = "InvalidSource"
    FORBIDDEN_SOURCE = "ForbiddenSource"
    SOURCE_NOT_FOUND = "SourceNotFound"
    SOURCE_FORBIDDEN = "SourceForbidden"
    CHECKSUM_MISMATCH = "ChecksumMismatch"
    ARTIFACT_TOO_LARGE = "ArtifactTooLarge"
    COPY_FORBIDDEN = "CopyForbidden"
    ARTIFACT_BUCKET_NOT_CONFIGURED = "ArtifactBucketNotConfigured"
    ARTIFACT_BUCKET_NOT_FOUND = "ArtifactBucketNotFound"
    ARTIFACT_BUCKET_FORBIDDEN = "ArtifactBucketForbidden"
    # SageMaker refused
    VALIDATION_ERROR = "ValidationError"
    ACCESS_DENIED = "AccessDenied"
    NOT_FOUND = "NotFound"
    RESOURCE_LIMIT_EXCEEDED = "ResourceLimitExceeded"
    RESOURCE_IN_USE = "ResourceInUse"
    INVALID_CREDENTIALS = "InvalidCredentials"
    MISSING_CREDENTIALS = "MissingCredentials"
    MISSING_REGION = "MissingRegion"
    SAGEMAKER_ERROR = "SageMakerError"
    AWS_CLIENT_ERROR = "AWSClientError"


class EventReason(StrEnum):
    """The reasons of Normal Events (and of the NotOwned Warning); a Stalled condition's
    Warning Event carries the condition's `Reason`."""

    CREATED = "Created"
    UPDATED = "Updated"
    REPLACED = "Replaced"  # a Model's spec changed: deleted and created again
    APPROVAL_CHANGED = "ApprovalChanged"
    DRIFT_CORRECTED = "DriftCorrected"  # SageMaker was changed outside Git and put back
    ADOPTED = "Adopted"
    DELETED = "Deleted"
    RETAINED = "Retained"
    NOT_OWNED = "NotOwned"
    # Warning: a Model's package was rejected or deleted after the model was made; it is kept
    PACKAGE_NO_LONGER_APPROVED = "PackageNoLongerApproved"


# Artifact errors a person fixes by correcting spec.artifacts (CEL keeps it unchangeable: it
# is the version's model data), which means a new object; nothing was registered yet.
FIXED_IN_ARTIFACTS = frozenset(
    {
        Reason.CHECKSUM_MISMATCH,
        Reason.SOURCE_NOT_FOUND,
        Reason.SOURCE_FORBIDDEN,
        Reason.FORBIDDEN_SOURCE,
        Reason.INVALID_SOURCE,
        Reason.ARTIFACT_TOO_LARGE,
    }
)
