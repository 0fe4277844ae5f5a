"""Kubernetes API emulator for tests (see harness.kube.fixtures for usage)."""

from . import rbac
from .client import ApiResource, KubeApiError, KubeClient, load_crds
from .cluster import KubeCluster
from .emulator import Fault, KubeApiEmulator, RequestRecord
from .managed_fields import field_manager, owners
from .server import EmulatorServer, write_kubeconfig

__all__ = [
    "ApiResource",
    "EmulatorServer",
    "Fault",
    "KubeApiEmulator",
    "KubeApiError",
    "KubeClient",
    "KubeCluster",
    "RequestRecord",
    "field_manager",
    "load_crds",
    "owners",
    "rbac",
    "write_kubeconfig",
]
