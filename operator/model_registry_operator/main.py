"""The operator process: configure kopf once, build the SageMaker backend, run.

`run_operator` returns the process exit code. Configuration problems (no kubeconfig, no
AWS region) end with one sentence on stderr and a non-zero code, never a traceback.
"""

from __future__ import annotations

import concurrent.futures
import gc
import json
import logging
import random
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError

from . import FINALIZER, GROUP, VERSION, timing
from .controllers.context import Context, CopyArtifacts
from .controllers.resyncs import ResyncLoop
from .controllers.wiring import ComeBackLater, Runtime
from .errors import ReconcileError
from .metrics import OperatorMetrics, serve
from .settings import Settings

log = logging.getLogger("model_registry_operator")

# Threads for the blocking reconciles (boto3 calls); the handlers themselves are async and
# wait without holding a thread. The boto3 connection pool is sized to match.
HANDLER_THREADS = 16


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log collectors parse without configuration."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        k8s = getattr(record, "k8s_ref", None)  # kopf's per-object loggers
        if isinstance(k8s, dict):
            entry["object"] = {k: k8s.get(k) for k in ("kind", "namespace", "name") if k8s.get(k)}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class WaitingIsNotAnError(logging.Filter):
    """kopf logs every kopf.TemporaryError at ERROR, from inside its `except` block; here the
    handlers raise one (wiring.ComeBackLater) to say "look again in N seconds" (waiting for a
    group, an approval, SageMaker's InProgress, a retry the status explains), so a record
    logged while that exception is being handled is DEBUG: shown with --verbose only. The
    operator logs one INFO line when an object's condition changes instead (wiring.py). Told
    by the exception's type, never by the wording of kopf's message."""

    def __init__(self, verbose: bool = False):
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and isinstance(sys.exc_info()[1], ComeBackLater):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return self.verbose
        return True


class RefusalsSaidOnObjects(logging.Filter):
    """botocore logs each failed credential refresh (an assumed role, accounts.py) with its
    traceback; a refusal the operator reports on its objects (AssumeRoleFailed, or a retry: a
    ReconcileError) is said there, once per change, so its record here is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ReconcileError))


class ApiServerOutage(logging.Filter):
    """While the Kubernetes API server cannot be reached, kopf logs every failed request of
    every watch at ERROR, then the watchers' tracebacks, and asyncio its "Task exception was
    never retrieved": one sentence per state change instead. The first such record (told by
    its exception's type: a connection error or a timeout, never by its wording) becomes a
    WARNING sentence and the rest are dropped; a thread then asks the API server for its
    version every few seconds and says, once, when it answers again."""

    def __init__(self, probe: Callable[[], str | None]):
        super().__init__()
        self._probe = probe  # None when the API server answers, else why not
        self._down = threading.Event()
        self._log = logging.getLogger("model_registry_operator")

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else sys.exc_info()[1]
        if not record.name.startswith(("kopf", "asyncio")) or not is_unreachable(error):
            return True
        if self._down.is_set():
            return False
        self._down.set()
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg, record.args, record.exc_info, record.exc_text = (
            "the Kubernetes API server cannot be reached (%s); the operator waits for it and carries on then",
            (type(error).__name__,),
            None,
            None,
        )
        threading.Thread(target=self._wait_for_it, name="api-server-probe", daemon=True).start()
        return True

    def _wait_for_it(self) -> None:
        while self._probe() is not None:
            time.sleep(timing.API_SERVER_PROBE_INTERVAL)
        self._down.clear()
        self._log.info("the Kubernetes API server answers again")


def is_unreachable(error: BaseException | None) -> bool:
    """A connection error or a timeout, also as the cause of what kopf raised after its retries."""
    import aiohttp

    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, (aiohttp.ClientConnectionError, ConnectionError, TimeoutError)):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def api_server_probe() -> str | None:
    """None when the Kubernetes API server answers, else why not."""
    import kubernetes

    try:
        configuration = kubernetes.client.Configuration.get_default_copy()
        configuration.retries = False
        kubernetes.client.VersionApi(kubernetes.client.ApiClient(configuration)).get_code(
            _request_timeout=timing.API_SERVER_PROBE_INTERVAL
        )
    except Exception as exc:  # noqa: BLE001 - any failure means: not yet
        return str(exc)
    return None


def configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(WaitingIsNotAnError(verbose))
    handler.addFilter(ApiServerOutage(api_server_probe))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("botocore", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # its retry warnings: the caller says what failed
    logging.getLogger("botocore.credentials").addFilter(RefusalsSaidOnObjects())
    if not verbose:  # kopf's "handler/timer succeeded" lines: one per object per resync
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)


def resync_loop(settings: Settings, peering: str | None) -> ResyncLoop | None:
    """The operator-wide resync loop when this process works alone; None: a kopf timer per object,
    which kopf pauses on a standby peer and which keeps other shards' finalizers
    (controllers/resyncs.py says why)."""
    if peering is not None or settings.shards > 1:
        return None
    return ResyncLoop(settings.resync_seconds)


def check_kubernetes_credentials() -> str | None:
    """None when a kubeconfig or in-cluster account is usable, else why not (one sentence)."""
    try:
        import kubernetes
    except ImportError:  # kopf falls back to its own kubeconfig reader
        return None
    try:
        kubernetes.config.load_incluster_config()
        return None
    except kubernetes.config.ConfigException:
        pass
    try:
        kubernetes.config.load_kube_config()
        return None
    except Exception as exc:  # noqa: BLE001 - the client raises several types for a broken file
        return f"cannot read Kubernetes credentials (kubeconfig or in-cluster service account): {exc}"


def stale_crds_problem() -> str | None:
    """kopf keeps its records in status.kopf (configure_kopf). The CRDs of an earlier release
    prune that field, and the operator would then lose every retry it schedules (a group's
    delete waiting for its versions would never look again): said at start-up, not found out
    from stuck objects. None also when the check cannot be made: kopf says more then."""
    try:
        import kubernetes
    except ImportError:
        return None
    import urllib3

    from .api import KINDS
    from .api.common import KOPF_STATUS

    configuration = kubernetes.client.Configuration.get_default_copy()
    configuration.retries = False  # one sentence now, not three urllib3 retries and warnings
    api, stale = kubernetes.client.ApiextensionsV1Api(kubernetes.client.ApiClient(configuration)), []
    for kind in KINDS.values():
        name = f"{kind.plural}.{GROUP}"
        try:
            crd = api.read_custom_resource_definition(name, _request_timeout=10)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return f"the custom resource definition {name} is not installed: kubectl apply -f crds/"
            return None
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # no API server there
            reason = str(getattr(exc, "reason", None) or exc).rsplit("] ", 1)[-1]  # "Connection refused"
            return (
                f"cannot reach the Kubernetes API server at {configuration.host} ({reason}); check the kubeconfig "
                "or the network"
            )
        except Exception:  # noqa: BLE001 - an odd answer: kopf says more as it retries
            return None
        for version in crd.spec.versions or []:
            schema = version.schema.open_apiv3_schema if version.schema else None
            properties = (schema.properties if schema is not None else None) or {}
            status = properties.get("status")
            kopf = (status.properties or {}).get(KOPF_STATUS) if status is not None else None
            if version.name == VERSION and not (kopf and kopf.x_kubernetes_preserve_unknown_fields):
                stale.append(name)
    if stale:
        return (
            f"the installed custom resource definitions are older than this operator ({', '.join(stale)} do not "
            f"keep status.{KOPF_STATUS}): apply the ones it ships (kubectl apply -f crds/; helm upgrade does not "
            "update CRDs), then start it again"
        )
    return None


def build_context(settings: Settings, metrics: OperatorMetrics) -> tuple[Context, Runtime, str]:
    """(what the reconciles need, what the kopf layer keeps, the AWS region).

    The registry of the operator's own identity in its region is made here (its configuration
    is checked at start); the others (another region, a namespace's role) when an object first
    needs them (accounts.Accounts), each once, shared by every thread."""
    import botocore.session

    from .accounts import Accounts
    from .registry import SageMakerRegistry, default_config

    session = botocore.session.get_session()  # the operator's own: credential chain, endpoints
    config = default_config(max_pool_connections=HANDLER_THREADS)
    registry = SageMakerRegistry(session=session, config=config, rate_limit=settings.sagemaker_rate)
    executor = concurrent.futures.ThreadPoolExecutor(HANDLER_THREADS, thread_name_prefix="reconcile")
    ctx = Context.create(
        registry,
        settings,
        copy_artifacts=artifact_copier(settings, registry.region, metrics, session=session),
    )
    ctx.accounts = Accounts(
        settings,
        registry.region,
        session=session,
        registry_factory=lambda on, region: SageMakerRegistry(
            region, session=on, config=config, rate_limit=settings.sagemaker_rate
        ),
        copier_factory=lambda on, region, bucket: artifact_copier(
            settings, region, metrics, session=on, bucket=bucket
        ),
        own=(registry, ctx.listings),
    )
    metrics.watch_sagemaker(ctx.accounts.metrics)
    return ctx, Runtime(executor=executor), registry.region


def artifact_copier(
    settings: Settings,
    region: str,
    metrics: OperatorMetrics,
    *,
    session: Any = None,
    bucket: str | None = None,
) -> CopyArtifacts | None:
    """copy_artifacts bound to one S3 client (of `session`: a botocore session, by default the
    operator's own) and an artifact bucket (default: the operator's; never called without one:
    controllers/modelpackage.py says ArtifactBucketNotConfigured first), or None when the
    library is not installed.

    Each artifact's result is counted in the metrics: copied, reused (a complete copy was
    already in the bucket), or failed (the copy of the spec's artifacts failed)."""
    # built without a bucket too: the S3 client's configuration is checked at start
    bucket = bucket or settings.artifact_bucket or ""
    try:
        from .artifacts import copy_artifacts
    except ImportError:
        return None
    import botocore.session
    from botocore.config import Config

    s3: Any = (session or botocore.session.get_session()).create_client(
        "s3",
        region_name=region,
        config=Config(
            retries={"mode": "standard"},
            max_pool_connections=HANDLER_THREADS,
            user_agent_extra="model-registry-operator",
        ),
    )

    def copy(artifacts: Any, *, key_prefix: str, progress: Any = None) -> list[dict[str, Any]]:
        def counted(status: dict[str, Any], copied: bool) -> None:
            metrics.artifact("copied" if copied else "reused", status.get("size") or 0)

        try:
            return copy_artifacts(
                artifacts,
                s3_client=s3,
                bucket=bucket,
                key_prefix=key_prefix,
                settings=settings,
                progress=progress,
                on_done=counted,
            )
        except Exception:
            metrics.artifact("failed")
            raise

    return copy


def configure_kopf(kopf_settings: Any) -> None:
    """kopf settings, applied once at start-up: the product's own names, bounded timeouts."""
    import kopf

    from .api.common import KOPF_DIFFBASE_FIELD, KOPF_PROGRESS_FIELD, KOPF_TOUCH_FIELD

    kopf_settings.persistence.finalizer = FINALIZER
    # kopf's records (the last handled spec; a handler's retries) go into the status, where
    # kopf writes them with the status patch the operator makes anyway: in annotations each
    # handled change cost a metadata patch of its own. Objects handled by an earlier version
    # have no record there: their create handler runs once more (the reconcile is idempotent).
    kopf_settings.persistence.progress_storage = kopf.StatusProgressStorage(
        field=KOPF_PROGRESS_FIELD, touch_field=KOPF_TOUCH_FIELD
    )
    kopf_settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage(field=KOPF_DIFFBASE_FIELD)
    kopf_settings.posting.level = logging.INFO
    kopf_settings.posting.reporting_component = "model-registry-operator"
    # Reconnect watches regularly (a silent connection loss cannot stall the operator for long).
    kopf_settings.watching.server_timeout = timing.WATCH_SERVER_TIMEOUT
    kopf_settings.watching.client_timeout = timing.WATCH_CLIENT_TIMEOUT
    kopf_settings.watching.connect_timeout = timing.WATCH_CONNECT_TIMEOUT
    kopf_settings.networking.request_timeout = timing.KUBERNETES_REQUEST_TIMEOUT
    # Retries of unexpected errors: never a hot loop.
    kopf_settings.execution.default_backoff = timing.KOPF_DEFAULT_BACKOFF


def freeze_startup_heap() -> int:
    """Take what start-up made (modules, botocore's service models, pydantic's validators:
    about 150,000 objects, none of which becomes garbage) out of the cyclic collector's reach;
    returns how many. kopf leaves cyclic garbage behind each watch event (its Body and Patch
    views refer to each other), so full collections run every few seconds under load, and
    each one is a pause of every thread: measured in a burst of 1000 package wake-ups,
    0.21 s per full collection before, 0.11 to 0.14 s after, the same peak RSS."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def liveness_problem(url: str | None) -> str | None:
    """Why kopf could not serve the liveness endpoint at `url` (the port is taken, the host is
    not this machine's), told before kopf starts: kopf itself would end in a traceback."""
    if not url:
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return f"--liveness {url!r} is not a URL like http://0.0.0.0:8080/healthz"
    try:
        port = parts.port or 80
        with socket.create_server((parts.hostname or "0.0.0.0", port)):
            return None
    except (OSError, ValueError) as exc:
        return (
            f"cannot serve the liveness endpoint {url}: {getattr(exc, 'strerror', None) or exc}; "
            "choose another --liveness URL"
        )


def run_operator(
    settings: Settings,
    liveness: str | None = None,
    peering: str | None = None,
    verbose: bool = False,
    metrics_address: tuple[str, int] | None = None,
) -> int:
    """`metrics_address`: (addr, port) to serve Prometheus metrics on; None: not served."""
    configure_logging(verbose)
    problem = check_kubernetes_credentials()
    if problem:
        print(f"model-registry-operator: {problem}", file=sys.stderr)
        return 1
    # an object not looked at for three resync periods is another (paused) replica's
    metrics = OperatorMetrics(objects_max_age=3 * settings.resync_seconds)
    try:
        ctx, runtime, region = build_context(settings, metrics)
    except ReconcileError as err:
        print(f"model-registry-operator: {err.message}", file=sys.stderr)
        return 1
    except (BotoCoreError, ValueError) as err:  # AWS_PROFILE naming no profile, AWS_MAX_ATTEMPTS=abc, ...
        print(f"model-registry-operator: the AWS configuration is not usable: {err}", file=sys.stderr)
        return 1
    problem = liveness_problem(liveness)
    if problem:
        print(f"model-registry-operator: {problem}", file=sys.stderr)
        return 1
    if metrics_address is not None:
        host, port = metrics_address
        try:
            serve(metrics_address)
        except OSError as exc:  # the port is taken, or the address is not one of this host's
            print(
                f"model-registry-operator: cannot serve metrics on {host}:{port}: {exc.strerror or exc}; "
                "choose another --metrics/MRO_METRICS ADDR:PORT, or set it empty to turn metrics off.",
                file=sys.stderr,
            )
            return 1
        log.info("metrics: http://%s:%s/metrics", host, port)
    problem = stale_crds_problem()  # the first request to the API server: the local checks come first
    if problem:
        print(f"model-registry-operator: {problem}", file=sys.stderr)
        return 1

    import kopf

    from .controllers.wiring import register_all

    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_kopf(settings)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> Any:
        # an own registry has none of kopf's implicit login handlers: the kubernetes client's
        # (kubeconfig, in-cluster service account) is the one this operator documents
        info = kopf.login_via_client(**kwargs)
        return runtime.shards.identified(info) if runtime.shards is not None else info

    if settings.shards > 1:
        # every replica active on its share of the objects (sharding.py); replaces peering (cli.py)
        from .sharding import Sharding

        runtime.shards = Sharding.create(settings)
        runtime.status_writer = runtime.shards.objects  # its writes name this replica (User-Agent)
        runtime.shards.register(registry)
        log.info(
            "sharding: %d shards, this replica is %s (Leases %s-shard-<i>)",
            settings.shards,
            runtime.shards.identity,
            settings.shard_lease_name,
        )
    runtime.resyncs = resync_loop(settings, peering)
    register_all(registry, ctx, metrics, runtime)
    log.info(
        "starting: instance=%s namespaces=%s resync=%ss (%s) deletionPolicy=%s region=%s",
        settings.instance,
        list(settings.namespaces) or "all",
        settings.resync_seconds,
        "one loop" if runtime.resyncs is not None else "a kopf timer per object",
        settings.deletion_policy,
        region,
    )
    log.info(
        "artifact sources: buckets=%s hosts=%s%s",
        list(settings.source_buckets) or "any",
        list(settings.source_hosts) or "any",
        ""
        if settings.source_buckets and settings.source_hosts
        else " (set MRO_SOURCE_BUCKETS and MRO_SOURCE_HOSTS to restrict what a ModelPackage may make the operator read)",
    )
    log.debug("start-up heap frozen: %d objects", freeze_startup_heap())
    try:
        kopf.run(
            registry=registry,
            standalone=peering is None,
            peering_name=peering,
            # kopf pauses every peer that shares the top priority, so each replica draws its
            # own: the highest runs, the others stand by and take over when its lease expires.
            priority=random.randint(1, 2**31 - 1),
            liveness_endpoint=liveness or None,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
        )
    except KeyboardInterrupt:
        return 0
    except kopf.LoginError as exc:
        print(f"model-registry-operator: cannot log in to Kubernetes: {exc}", file=sys.stderr)
        return 1
    return 0
