"""Kubernetes operator that reconciles ModelPackageGroup, ModelPackage and Model into SageMaker."""

GROUP = "registry.mlops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
FINALIZER = f"{GROUP}/finalizer"
