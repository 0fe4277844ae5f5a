"""Kubernetes operator that reconciles ModelPackageGroup, ModelPackage and Model into SageMaker."""

GROUP = "registry.mlops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
FINALIZER = f"{GROUP}/finalizer"
# Customer metadata key holding the Kubernetes UID of the object that created a version:
# how a restarted operator finds a version it made before its status was written.
OWNER_UID_KEY = f"{GROUP}/uid"
