"""Corrections to moto 5.2.5 where it deviates from the documented AWS behaviour.

Each module corrects one area of moto's SageMaker backend; ``apply()`` (called when the
harness server is created) installs them in moto's classes: the server runs in this
process, so patching the classes is enough. Every correction
quotes the AWS API reference it follows (botocore's service model documentation or the
seed pages of the API reference) and has its own test in tests/harness_selftest/.
"""

from __future__ import annotations

import os

_applied = False

# Set to 1 to serve moto as shipped: the self-tests of the corrections must then fail.
UNCORRECTED_ENV = "HARNESS_AWS_UNCORRECTED"


def apply() -> None:
    """Patch moto once per process."""
    global _applied
    if _applied or os.environ.get(UNCORRECTED_ENV) == "1":
        return
    from . import accounts, group_policies, model_packages, models, tags
    from ._common import install_patches

    install_patches()
    for module in (accounts, group_policies, model_packages, models, tags):
        module.apply()
    _applied = True
