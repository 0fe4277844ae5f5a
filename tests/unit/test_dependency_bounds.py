"""The lowest versions pyproject.toml allows must work. For moto, whose internals the AWS
harness imports and patches, the bound is checked by installing moto at exactly its lower
bound into a fresh virtualenv and starting the corrected server there.

The fresh venv sees this venv's other packages (a path entry in a .pth file, after its own
site-packages), so only moto is downloaded (from the package registry pip is configured
with); its declared requirements are then checked against what is installed (`pip check`).
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import venv

import pytest
from packaging.requirements import Requirement

REPO = pathlib.Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def requirements() -> dict[str, Requirement]:
    listed = PYPROJECT["project"]["dependencies"] + [
        r for extra in PYPROJECT["project"]["optional-dependencies"].values() for r in extra
    ]
    return {Requirement(r).name.lower(): Requirement(r) for r in listed}


def lower_bound(requirement: Requirement) -> str:
    (bound,) = [s.version for s in requirement.specifier if s.operator == ">="]
    return bound


def overlay_venv(path: pathlib.Path) -> pathlib.Path:
    """A venv at `path` that also sees this interpreter's site-packages; its python."""
    venv.EnvBuilder(with_pip=True).create(path)
    python = path / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (pathlib.Path(site) / "_overlay.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_every_dependency_has_a_lower_bound():
    for name, requirement in requirements().items():
        assert lower_bound(requirement), f"{name} needs a >= lower bound"


# What the harness takes from moto: MotoRequestHandler (tests/harness/aws/server.py) first
# appeared in moto 5.2.5; 5.2.4 and older fail at import.
HARNESS_CHECK = textwrap.dedent(
    """
    import importlib.metadata, sys
    import moto
    assert moto.__file__.startswith(sys.prefix), moto.__file__   # the venv's moto, not the overlay's
    assert importlib.metadata.version("moto") == sys.argv[1]
    import harness.aws.fixtures
    from harness.aws.server import AwsServer
    import boto3
    server = AwsServer().start()
    try:
        sm = boto3.client("sagemaker", region_name="us-east-2", endpoint_url=server.endpoint_url,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        sm.create_model_package_group(ModelPackageGroupName="bounds")
        assert sm.describe_model_package_group(ModelPackageGroupName="bounds")["ModelPackageGroupName"] == "bounds"
        s3 = boto3.client("s3", region_name="us-east-2", endpoint_url=server.endpoint_url,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket="bounds", CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
        s3.put_object(Bucket="bounds", Key="k", Body=b"x")
        assert server.log.count("PutObject") == 1
    finally:
        server.stop()
    print("ok", moto.__version__)
    """
)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_moto_at_its_lower_bound_runs_the_harness(tmp_path):
    requirement = requirements()["moto"]
    bound = lower_bound(requirement)
    python = overlay_venv(tmp_path / "venv")
    extras = ",".join(sorted(requirement.extras))
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", f"moto[{extras}]=={bound}"],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, f"moto=={bound} does not install:\n{install.stderr[-3000:]}"
    check = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True)
    broken = [line for line in check.stdout.splitlines() if re.match(r"moto\b", line, re.IGNORECASE)]
    assert not broken, f"moto=={bound}'s requirements are not met: {broken}"
    run = subprocess.run(
        [python, "-c", HARNESS_CHECK, bound],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO / "tests"), "PATH": "/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED": "true"},
        timeout=300,
    )
    assert run.returncode == 0 and "ok" in run.stdout, (
        f"the harness does not work with moto=={bound} (pyproject's lower bound):\n{run.stderr[-3000:]}"
    )


def test_the_moto_bound_is_at_least_the_first_release_with_what_the_harness_imports():
    # keep in step with the comment above HARNESS_CHECK: found by installing 5.2.1 to 5.2.5
    from packaging.version import Version

    assert Version(lower_bound(requirements()["moto"])) >= Version("5.2.5")
    assert "MotoRequestHandler" in (REPO / "tests" / "harness" / "aws" / "server.py").read_text()
    assert sys.version_info >= (3, 11)
