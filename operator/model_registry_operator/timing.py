"""Every delay the operator decides: when a reconcile looks again, how retries back off,
how long a wait is ridden out in memory, and the timeouts of its clients.

One module, so that "when does it try again, and why?" has one answer. Each constant is
named by what it waits for. Callers import the names; no module keeps a delay of its own.

A reconcile's next look is one of:
- a *wait* for something expected to happen by itself (a referenced object becoming Ready,
  SageMaker completing a version): a fixed short delay, stretched by `patience` the longer
  the object has been Reconciling;
- a *retry* after a retryable error: exponential `backoff`, never sooner than the error's
  class asks (its `RetryableError.delay`, from the floors below), capped, with jitter;
- the periodic resync (`Settings.resync_seconds`) and, optionally, the audit
  (`Settings.audit_seconds`, spread by `audit_due`).
"""

from __future__ import annotations

import datetime
import hashlib
import random
from collections.abc import Callable
from typing import Any

# --- waits for something expected to happen by itself ------------------------------------

# A ModelPackage whose ModelPackageGroup (by reference) does not exist or is not Ready yet.
WAIT_FOR_GROUP_DELAY = 2.0
# A Model whose referenced ModelPackage does not exist, is not Ready or not Approved yet.
WAIT_FOR_PACKAGE_DELAY = 3.0
# A group or model just created that a describe does not show yet (eventual consistency),
# and a group SageMaker reports Pending or InProgress.
WAIT_FOR_GROUP_TO_APPEAR_DELAY = 2.0
WAIT_FOR_MODEL_TO_APPEAR_DELAY = 3.0
# A ModelPackage adopting version N (spec.modelPackageVersion) that is not registered yet
# (a pipeline still running): the group's listing, shared by its waiters, is read at most
# this old, so the version is taken in within about twice this of its registration. Not
# stretched by patience: a person watching a pull request expects it within seconds.
WAIT_FOR_ADOPTED_VERSION_DELAY = 3.0
# A version SageMaker reports Pending or InProgress, and one just registered.
WAIT_FOR_VERSION_DELAY = 1.0
# A version SageMaker is deleting (behind the operator's back).
WAIT_FOR_VERSION_DELETION_DELAY = 5.0
# A deleted group whose versions have not gone yet.
WAIT_FOR_VERSIONS_DELAY = 5.0
# ...after this long (two resync periods, at most five minutes) it is Stalled/VersionsRemain:
# the versions its ModelPackage objects delete go within seconds, so what remains was
# retained or made outside the cluster and may never go.
VERSIONS_PATIENCE_CAP = 300.0


def versions_patience(resync_seconds: float) -> float:
    return min(VERSIONS_PATIENCE_CAP, 2 * resync_seconds)


# The longer an object has been Reconciling (an approval, a long validation, a group whose
# versions others keep), the less often it is looked at: a quarter of the time waited so far,
# at most every two minutes. Every kopf retry is an API write, so a fixed 3 s poll of an
# approval that takes a week would be 200,000 writes; this is about 5,000.
PATIENCE_SHARE = 0.25
PATIENCE_CAP = 120.0
# A wait that the change of a Kubernetes object ends (a ModelPackage for its group, a Model
# for its package's approval) has no timer at all: that change wakes it (controllers/wiring.py)
# and the periodic resync is its safety net (Result.woken). Its kopf retries were a write each:
# 1000 packages waiting 2 minutes for their groups made 15,700 status writes.
# Objects applied together have waited the same whole seconds, so their stretched waits
# would come due together (a thousand objects waiting for SageMaker or an approval by ARN: a few
# hundred kopf retries, each a write, in the same second). Each object's wait is shorter by
# up to this share, drawn from its UID, so they spread out and the cap above stays a cap.
PATIENCE_SPREAD = 0.25


def patience_after(waited: float) -> float:
    return min(PATIENCE_CAP, max(0.0, waited) * PATIENCE_SHARE)


def true_for(
    conditions: list[dict[str, Any]], ctype: str, now: datetime.datetime | None = None
) -> float | None:
    """Seconds since condition `ctype` became True; None when it is not True."""
    since = next(
        (
            c.get("lastTransitionTime")
            for c in conditions
            if c.get("type") == ctype and c.get("status") == "True"
        ),
        None,
    )
    if not since:
        return None
    try:
        started = datetime.datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return None
    return max(0.0, ((now or datetime.datetime.now(datetime.UTC)) - started).total_seconds())


def patience(
    conditions: list[dict[str, Any]], now: datetime.datetime | None = None, uid: str | None = None
) -> float:
    """The least delay before an object that has been Reconciling this long is looked at
    again; `uid`: spread by PATIENCE_SPREAD."""
    spread = 1 - PATIENCE_SPREAD * uid_fraction(uid) if uid else 1.0
    return patience_after(true_for(conditions, "Reconciling", now) or 0.0) * spread


# --- retries after errors ------------------------------------------------------------------

# The least delay before retrying, by the error's class (registry/classify.py assigns them).
THROTTLED_DELAY = 15.0  # botocore has already retried within the same second
UNAVAILABLE_DELAY = 10.0  # SageMaker 5xx, network errors
CONFLICT_DELAY = 5.0  # a concurrent modification of the same entity
CREDENTIALS_EXPIRED_DELAY = 5.0  # botocore refreshes credentials and corrects clock skew
# Our own create whose answer was lost: the next reconcile finds what it made.
CREATE_UNCONFIRMED_DELAY = 15.0
# Anything else retryable (an artifact upload that failed, an unreachable source, a bug).
DEFAULT_RETRY_DELAY = 10.0
# A delete that failed with an error a person must fix (access, validation) is still
# retried, slowly: the finalizer stays until it succeeds.
FAILED_DELETE_RETRY_DELAY = 30.0

RETRY_CAP = 60.0
# Objects failing together (1000 versions throttled at once) spread their retries over this
# share of the delay instead of all coming back in the same second.
RETRY_JITTER = 0.2


def backoff(attempt: int, base: float = 1.0, cap: float = RETRY_CAP) -> float:
    """Exponential backoff for retryable errors: 1, 2, 4, ... up to a minute."""
    return min(cap, base * 2.0 ** max(0, attempt))


def retry_delay(
    floor: float, attempt: int, cap: float = RETRY_CAP, jitter: Callable[[], float] = random.random
) -> float:
    """When to try again after the `attempt`-th failure in a row of an error whose class asks
    for at least `floor` seconds: the backoff, never sooner than the floor, capped, plus up
    to RETRY_JITTER more."""
    return min(cap, max(floor, backoff(attempt, cap=cap))) * (1 + RETRY_JITTER * jitter())


def stated_retry_delay(floor: float, attempt: int) -> float:
    """The retry delay without its jitter, as a message states it: the same on every retry
    at the cap, so a throttled crowd does not rewrite its status each time."""
    return retry_delay(floor, attempt, jitter=lambda: 0.0)


# Failed reconciles in a row (each already retrying every source request) after which an
# unreachable artifact source is Stalled: a person should look; retries go on meanwhile.
SOURCE_STALL_AFTER = 3


# --- the kopf layer ------------------------------------------------------------------------

# Longest in-memory wait per handler call before the status says Reconciling and kopf
# calls again; longer waits (an approval, a backoff) always go through kopf.
INLINE_WAIT_SECONDS = 10.0
# An object woken by a change of what it waits for (wiring.KindHandlers.wake) whose own
# handler holds it at that moment is looked at again after this, a few times.
WAKE_RETRY_DELAY = 0.5
# A waiting object's take-over (wiring.KindHandlers.take_over) whose write is refused because
# the object changed meanwhile (its own progress writes) reads it and writes again, this often.
TAKE_OVER_WRITES = 3
# ...and one whose write finds the object moved on but still waiting (taken over from the
# index's copy, older than the object; or its kopf handler ran meanwhile and waits again) is
# taken over again from what is stored, this many times in all.
TAKE_OVERS = 2
# What a group's or package's reconcile just found is what its dependents read of it
# (wiring.Announced) until its status write comes back through the watch, at most this long:
# the watch's latency, with room; after it kopf's index is the truth again. So long, too, a
# reconcile of an object starts from what the last one found when its copy's status is older
# than that (wiring.Found).
ANNOUNCED_SECONDS = 10.0
WAKE_ATTEMPTS = 6
# A take-over or a wake-up (wiring.KindHandlers.take_over, wake) that could not read or write
# its object (the API server away a moment, its writes refused in a row) tries again after
# retry_delay(WAKE_FAILURE_DELAY, attempt): 1, 2, 4, 8 s, so many times in all; after that the
# object's resync is its safety net. Without it a blip left it waiting until its resync. Each
# gap stays under ANNOUNCED_SECONDS, so that a retry starts from what the failed one found
# (wiring.Found) and does not make or say again what it did.
WAKE_FAILURE_DELAY = 1.0
WAKE_FAILURE_ATTEMPTS = 5
# A wait that a change ends (Result.woken) and that has just begun is looked at once more, in
# memory, this long after its handler parked it: the change may have come before the wait's
# write reached the index of dependents, and its wake-up then found nothing waiting to wake.
PARKED_LOOK_AGAIN_SECONDS = 2.0
# A referenced object that has just appeared but is not Ready yet wakes the objects waiting for
# it only if it is still so this long after (wiring.KindHandlers.wake_dependents): its Ready,
# usually within a second, wakes them anyway; this only brings their message up to date when
# it is slow or stalled.
APPEARED_GRACE_SECONDS = 5.0
# The operator-wide resync loop (controllers/resyncs.py): how often it looks for objects whose
# resync is due (their resync is at most this late), how many it resyncs at once (each a read
# and a reconcile in the context's threads), and when an object whose read failed (the API
# server away) is tried again, at most its resync period.
RESYNC_LOOP_TICK = 1.0
RESYNC_CONCURRENCY = 8
RESYNC_READ_RETRY = 30.0
# kopf's retry delay for an error no handler classified (a handler never raises one: this
# bounds a bug's hot loop).
KOPF_DEFAULT_BACKOFF = 10.0
# Watches are reconnected regularly, so a silent connection loss cannot stall the operator
# for long; requests to the API server are bounded.
WATCH_SERVER_TIMEOUT = 300  # an integer: the API server refuses timeoutSeconds=300.0
WATCH_CLIENT_TIMEOUT = 330.0
WATCH_CONNECT_TIMEOUT = 10.0
KUBERNETES_REQUEST_TIMEOUT = 60.0
# While the Kubernetes API server cannot be reached, asked whether it answers again this often.
API_SERVER_PROBE_INTERVAL = 5.0
# The progress of a long artifact copy, written from a reconcile thread.
STATUS_WRITE_TIMEOUT = 10.0
# Threads for the reads, and as many for the status writes, made outside handlers (take-overs,
# wake-ups, the resync loop): each request waits for the GIL between its steps while the event
# loop is busy, so a burst of them needs several in flight to keep the API server busy.
OBJECT_IO_THREADS = 8


# --- observation ---------------------------------------------------------------------------

# A resync reads a group listing less than this share of a resync period old: the resync
# timers of a group's packages tick within a short spread, the first lists, the rest reuse it.
LISTING_REUSE_SHARE = 0.9
# A listing older than this is not trusted to tell that a fresh version completed.
COMPLETION_LISTING_MAX_AGE = 1.0
# A fresh version's completion is read for every group of an account and region at once
# (controllers/listings.RecentVersions: one listing of all versions, newest first). A round
# goes when the oldest waiting version has waited MIN and either a page's worth waits (90 of
# the 100 a page holds: room for versions created meanwhile, newer, listed first),
# nothing was created for QUIET seconds, or the oldest has waited MAX: one version alone is
# seen after MIN, a burst costs about a call per 100. A round pages down until it has seen
# every waiting version, at most MAX_PAGES pages, and not further than SKEW seconds (of
# SageMaker's CreationTime) before the oldest; what it did not see is described. A version
# nobody asked about for EXPIRY seconds (its object deleted) is no longer waited for.
COMPLETION_ROUND_MIN_WAIT = 1.0
COMPLETION_ROUND_QUIET = 0.5
COMPLETION_ROUND_MAX_WAIT = 2.0
COMPLETION_ROUND_PAGE = 90
COMPLETION_ROUND_MAX_PAGES = 10
COMPLETION_ROUND_SKEW = 30.0
COMPLETION_WAIT_EXPIRY = 60.0
# The identity index (registry/identity_index.py) answers "no version carries this identity"
# from memory while its listing of the group is at most this old; older, the newest page is
# read again first (versions another writer with the same instance made meanwhile). The
# default resync period: the packages' resync listings, which it takes in, keep it younger.
IDENTITY_INDEX_MAX_AGE = 300.0


def uid_fraction(uid: str) -> float:
    """A number in [0, 1) drawn from an object's UID: the same in every process."""
    return int(hashlib.sha256(uid.encode()).hexdigest()[:12], 16) / 16**12


def audit_due(uid: str, now: float, since: float, period: float) -> bool:
    """Whether this object's turn to be described in full came after `since` (its previous
    resync) and by `now` (period 0: never). Each object's turn comes once per period at an
    offset drawn from its UID, so a thousand objects' audits spread evenly over the period
    instead of coming together; several turns missed (an operator down for days) are one audit."""
    if period <= 0:
        return False
    offset = uid_fraction(uid) * period
    return (now + offset) // period != (since + offset) // period


def resync_phase(uid: str) -> float:
    """The share of the resync period an object's first resync waits, in [0.5, 1.5): objects
    applied together resync spread over a period instead of all at once (the later ones keep
    that phase)."""
    return 0.5 + uid_fraction(uid)


# --- AWS clients ---------------------------------------------------------------------------

# botocore's standard retry mode (throttling, 5xx, network; exponential backoff with jitter,
# within a per-client retry quota); attempts count the first one. Every SageMaker call is a
# small control-plane request: short timeouts.
SAGEMAKER_MAX_ATTEMPTS = 5
SAGEMAKER_CONNECT_TIMEOUT = 5.0
SAGEMAKER_READ_TIMEOUT = 30.0
# Artifact sources (HTTPS, S3): attempts per request for network errors and 5xx, and the
# first backoff, doubled per attempt.
SOURCE_ATTEMPTS = 3
SOURCE_RETRY_BACKOFF = 0.5
SOURCE_CONNECT_TIMEOUT = 10.0
SOURCE_READ_TIMEOUT = 60.0

# --- Accounts and regions (accounts.py) -----------------------------------------------------

# An object whose namespace the operator's namespace index has not seen yet (created a moment
# before it): looked at again after this, ridden out in memory. Its annotations say which AWS
# account to call, so nothing is called before they are known.
WAIT_FOR_NAMESPACE_DELAY = 1.0
# Assumed-role credentials (STS AssumeRole, one hour) are refreshed by botocore's
# RefreshableCredentials: tried this long before they expire by the thread that notices,
# and by every thread from the mandatory window on (botocore's defaults).
ASSUMED_ROLE_ADVISORY_REFRESH = 15 * 60.0
ASSUMED_ROLE_MANDATORY_REFRESH = 10 * 60.0
# A role STS refused is not asked again for this long: the objects of its namespace (their
# resyncs, a restart) do not each make an AssumeRole; a trust policy fixed meanwhile is seen
# by the first reconcile after it.
ASSUME_ROLE_REFUSAL_MEMORY = 10.0

# --- SageMaker request rate (registry/ratelimit.py) ------------------------------------------

# The client-side limiter of each SageMaker client (one per AWS account and region), shared by
# every worker thread. Its bucket holds this many seconds of requests at the current rate (at
# least one request): after a quiet moment a reconcile's first calls go at once, and SageMaker's
# own bucket for the account, larger, keeps the difference as slack for network jitter.
SAGEMAKER_RATE_BURST_SECONDS = 0.25
# Throttling halves the rate, never below this many requests per second (nor above the ceiling;
# botocore's own adaptive retry mode goes down to 0.5).
SAGEMAKER_RATE_FLOOR = 2.0
# At most one halving per this long: the throttled answers to requests already in flight when
# the first one came say nothing new.
SAGEMAKER_RATE_DECREASE_INTERVAL = 1.0
# While requests succeed, the rate grows back by this share of its reference (the configured
# rate; without one, the rate before the last halving) per second, and at least by the minimum
# (requests/s per second), up to the ceiling: from half back to a configured 20/s in 10 s.
SAGEMAKER_RATE_INCREASE_SHARE = 0.05
SAGEMAKER_RATE_INCREASE_MIN = 1.0
# Without a configured rate there is no limit until SageMaker throttles; the first halving
# starts from the rate actually sent over this last window.
SAGEMAKER_RATE_WINDOW = 1.0

# --- Replicas that share the work (sharding.py) ----------------------------------------------

# Each shard's Lease: held this long after its last renewal (leaseDurationSeconds), renewed every
# RENEW seconds (a few renewals may fail before it lapses). Another replica takes a lease once it
# has seen it unchanged for the whole duration on its own clock (as client-go's leader election
# does: no clock is compared with another machine's).
SHARD_LEASE_DURATION = 15
SHARD_RENEW_INTERVAL = 5.0
# A holder stops starting work for a shard this long before its lease could be taken over: it owns
# the shard only while less than DURATION - MARGIN has passed since it sent its last renewal that
# succeeded, so a replica cut off from the API server has stopped before another starts.
SHARD_RENEW_MARGIN = 5.0
# Each replica heartbeats in the shard set's members Lease every RENEW seconds; one not seen to
# renew for this long is not counted among the live replicas the shards are balanced over, and
# forgotten (dropped from the members Lease) after FORGET.
SHARD_MEMBER_TIMEOUT = 15.0
SHARD_MEMBER_FORGET = 300.0
# A free or expired shard is taken by a replica that already holds its fair share
# (ceil(shards / live replicas)) only after it has been free or expired this long: the replicas
# below their share go first, and no shard stays unreconciled for long.
SHARD_ORPHAN_GRACE = 10.0
# A replica handing a shard over (another replica is below its share) stops starting work for
# it, waits for its handlers still running for that shard, at most this long, then releases it.
SHARD_DRAIN_TIMEOUT = 20.0
# Lease API requests: bounded well below a renewal interval plus the margin.
SHARD_REQUEST_TIMEOUT = 5.0
# A replica that does not own an object being deleted holds kopf's finalizer handling for it
# (sharding.py) and looks whether the object is gone this often.
SHARD_GONE_POLL = 5.0
