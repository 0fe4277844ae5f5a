"""The Dockerfile's install step yields a working console script, and the build context
leaves out what the image does not need. There is no Docker engine here or in CI: the test
copies what the Dockerfile's COPY lines copy (through .dockerignore) into a temp dir and runs
its `pip install` in a fresh venv. To stay fast and offline-capable (only the package
registry, for the build backend), the package is installed with --no-deps into a venv that
sees this venv's packages; `pip check` then verifies its requirements are met.
"""

from __future__ import annotations

import fnmatch
import pathlib
import shlex
import shutil
import subprocess
import sysconfig
import venv

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    lines = DOCKERFILE.replace("\\\n", " ").splitlines()
    return [line.split(None, 1)[1] for line in lines if line.strip().upper().startswith(name + " ")]


def dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rule, enough for the patterns used here: a path is out when it or one of
    its parents matches a pattern (`**/` matches any number of directories)."""
    parts = relative.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        for pattern in patterns:
            if pattern.startswith("!"):
                raise AssertionError(".dockerignore exceptions (!) are not handled by this test")
            if fnmatch.fnmatchcase(prefix, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatchcase(parts[i - 1], pattern[3:])
            ):
                return True
    return False


def copy_context(app: pathlib.Path) -> None:
    """What `COPY src... dest` (WORKDIR /app) puts into the image, built from the context."""
    patterns = dockerignore()
    for args in instructions("COPY"):
        *sources, dest = shlex.split(args)
        assert not any(s.startswith("--") for s in sources), f"COPY flags are not handled: {args}"
        for source in sources:
            assert not ignored(source, patterns), f".dockerignore leaves out {source}, which COPY needs"
            origin = REPO / source
            target = app / dest if not dest.endswith("/") else app / dest / origin.name
            if dest in ("./", "."):
                target = app / origin.name
            if origin.is_dir():
                for path in origin.rglob("*"):
                    relative = path.relative_to(REPO).as_posix()
                    if path.is_file() and not ignored(relative, patterns):
                        out = target / path.relative_to(origin)
                        out.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(path, out)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)


def pip_install_args() -> list[str]:
    (run,) = [r for r in instructions("RUN") if "pip install" in r]
    (step,) = [s.strip() for s in run.split("&&") if s.strip().startswith("pip install")]
    return shlex.split(step)[2:]


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    patterns = dockerignore()
    for path in (".venv", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", "tests"):
        assert ignored(path, patterns), f".dockerignore does not exclude {path}"
    assert ignored("operator/model_registry_operator/__pycache__/cli.cpython-311.pyc", patterns)
    assert ignored("operator/model_registry_operator.egg-info/PKG-INFO", patterns)
    assert not ignored("operator/model_registry_operator/cli.py", patterns)


def test_dockerfile_is_pinned_and_runs_as_non_root():
    (base,) = instructions("FROM")
    image = base.split()[0]
    tag = image.split("@", 1)[0].rsplit(":", 1)[-1]
    assert "@sha256:" in image or tag.count(".") >= 2, f"base image {image} is not pinned to a patch release"
    (user,) = instructions("USER")
    assert user.strip().split(":")[0].isdigit() and user.strip() != "0", (
        "the image must run as a numeric non-root user"
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_install_step_yields_a_working_console_script(tmp_path):
    app = tmp_path / "app"
    copy_context(app)
    assert (app / "pyproject.toml").exists() and (app / "operator" / "model_registry_operator").is_dir()
    assert not list(app.rglob("__pycache__")), "the context copied caches"

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # this venv's packages (the dependencies), after the new venv's own; not its .pth files,
    # so the development copy of the operator (an editable install) stays out of sight
    (pathlib.Path(site) / "_overlay.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    args = pip_install_args()
    assert args[-1] == ".", f"the install step is no longer `pip install ... .`: {args}"
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", *args[:-1], "--no-deps", "--ignore-installed", "."],
        cwd=app,
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, f"the Dockerfile's install step fails:\n{install.stderr[-3000:]}"

    script = env_dir / "bin" / "model-registry-operator"
    version = subprocess.run([script, "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert version.returncode == 0, version.stderr[-3000:]
    assert version.stdout.strip() == "model-registry-operator 0.1.0", version.stdout
    where = subprocess.run(
        [python, "-c", "import model_registry_operator as m; print(m.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(env_dir)), f"imported the development copy, not the installed one: {where}"
    check = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True)
    broken = [
        line for line in check.stdout.splitlines() if line.lower().startswith("model-registry-operator")
    ]
    assert not broken, f"the operator's requirements are not met: {broken}"
