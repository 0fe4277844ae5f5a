import subprocess
import sys

import pytest

from model_registry_operator.cli import main
from model_registry_operator.settings import Settings


def test_settings_defaults_and_env():
    s = Settings.from_env(
        {
            "MRO_ARTIFACT_BUCKET": "b",
            "MRO_RESYNC_SECONDS": "30",
            "MRO_ALLOW_HTTP": "true",
            "MRO_ARTIFACT_PREFIX": "/p/q/",
        }
    )
    assert (s.artifact_bucket, s.resync_seconds, s.allow_http, s.artifact_prefix) == ("b", 30.0, True, "p/q")
    assert Settings.from_env({}).deletion_policy == "Delete"
    assert (
        Settings.from_env({}).audit_seconds == 0
        and Settings.from_env({"MRO_AUDIT_SECONDS": "86400"}).audit_seconds == 86400
    )


@pytest.mark.parametrize(
    "var,value",
    [
        ("MRO_RESYNC_SECONDS", "soon"),
        ("MRO_RESYNC_SECONDS", "-1"),
        ("MRO_AUDIT_SECONDS", "-1"),
        ("MRO_AUDIT_SECONDS", "daily"),
        ("MRO_RESYNC_SECONDS", "nan"),
        ("MRO_RESYNC_SECONDS", "inf"),
        ("MRO_MAX_ARTIFACT_BYTES", "-5"),
        ("MRO_MAX_ARTIFACT_BYTES", "lots"),
        ("MRO_DELETION_POLICY", "Keep"),
        ("MRO_ALLOW_HTTP", "maybe"),
        ("MRO_SOURCE_BUCKETS", "s3://ml-src"),
        ("MRO_SOURCE_BUCKETS", ", ,"),
        ("MRO_SOURCE_BUCKETS", "ml src"),
        ("MRO_SOURCE_BUCKETS", "*"),
        ("MRO_SOURCE_BUCKETS", "/prefix"),
        ("MRO_SOURCE_BUCKETS", "b/p*/"),
        ("MRO_SOURCE_HOSTS", "https://models.example.org"),
        ("MRO_SOURCE_HOSTS", "models.example.org:443"),
        ("MRO_SOURCE_HOSTS", ","),
        ("MRO_SOURCE_HOSTS", "models.example.org/path"),
        ("MRO_SOURCE_HOSTS", "*"),
        ("MRO_SOURCE_HOSTS", "a.*.example.org"),
        ("MRO_SOURCE_HOSTS", "-bad.org"),
        ("MRO_INSTANCE", "Prod"),
        ("MRO_INSTANCE", "a/b"),
        ("MRO_INSTANCE", "x" * 64),
    ],
)
def test_bad_setting_names_the_variable(var, value):
    with pytest.raises(ValueError, match=var):
        Settings.from_env({var: value})


def test_source_allowlists_are_normalised():
    s = Settings.from_env(
        {
            "MRO_SOURCE_BUCKETS": " ml-src , team-*-models,shared/releases/ ",
            "MRO_SOURCE_HOSTS": "Models.Example.org.,*.example.net,[::1]",
        }
    )
    assert s.source_buckets == ("ml-src", "team-*-models", "shared/releases/")
    assert s.source_hosts == ("models.example.org", "*.example.net", "::1")
    assert (
        Settings.from_env({"MRO_SOURCE_BUCKETS": "", "MRO_SOURCE_HOSTS": ""}).source_buckets == ()
    )  # unset: any


def test_cli_bad_allowlist_exits_nonzero_with_a_sentence(monkeypatch, capsys):
    monkeypatch.setenv("MRO_SOURCE_HOSTS", "https://models.example.org")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "MRO_SOURCE_HOSTS" in err and "without scheme" in err and "Traceback" not in err


def test_cli_bad_env_exits_nonzero_with_a_sentence(monkeypatch, capsys):
    monkeypatch.setenv("MRO_DELETION_POLICY", "Keep")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "MRO_DELETION_POLICY" in err and "Traceback" not in err


def test_bad_flag_is_named_as_the_flag(capsys):
    assert main(["run", "--resync-seconds", "-3"]) == 2
    err = capsys.readouterr().err
    assert "--resync-seconds" in err and "MRO_RESYNC_SECONDS" not in err


def test_console_script_help_and_unknown_command():
    ok = subprocess.run(
        [sys.executable, "-m", "model_registry_operator.cli", "run", "--help"], capture_output=True, text=True
    )
    assert ok.returncode == 0 and "--all-namespaces" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "model_registry_operator.cli", "frobnicate"], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "invalid choice" in bad.stderr and "Traceback" not in bad.stderr


def test_instance_names_the_identity_of_what_the_operator_marks():
    assert Settings().instance == "default"
    assert Settings.from_env({"MRO_INSTANCE": "prod-eu"}).instance == "prod-eu"
    assert Settings.from_env({"MRO_INSTANCE": "prod-eu"}, instance="staging").instance == "staging"
    with pytest.raises(ValueError, match="--instance"):
        Settings.from_env({}, instance="Staging")


@pytest.mark.parametrize(
    "var, value",
    [
        ("MRO_RESYNC_SECONDS", "abc"),
        ("MRO_AUDIT_SECONDS", "daily"),
        ("MRO_MAX_ARTIFACT_BYTES", "10 parsecs"),
        ("MRO_MAX_ARTIFACT_BYTES", "1.5GB"),
    ],
)
def test_a_bad_number_is_described_in_the_settings_words_not_pythons(var, value):
    with pytest.raises(ValueError) as raised:
        Settings.from_env({var: value})
    message = str(raised.value)
    assert message.startswith(f"{var}: expected ") and repr(value) in message
    assert "could not convert" not in message and "invalid literal" not in message


@pytest.mark.parametrize(
    "value, size",
    [
        ("53687091200", 50 * 1024**3),
        ("50GiB", 50 * 1024**3),
        ("500 MB", 500 * 1000**2),
        ("2TiB", 2 * 1024**4),
    ],
)
def test_the_artifact_size_limit_takes_units(value, size):
    assert Settings.from_env({"MRO_MAX_ARTIFACT_BYTES": value}).max_artifact_bytes == size


def test_a_flag_value_is_echoed_as_typed(capsys):
    assert main(["run", "--resync-seconds", "0"]) == 2
    assert "got '0'" in capsys.readouterr().err


def test_version_and_no_command():
    version = subprocess.run(
        [sys.executable, "-m", "model_registry_operator.cli", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0 and version.stdout.startswith("model-registry-operator ")
    bare = subprocess.run(
        [sys.executable, "-m", "model_registry_operator.cli"], capture_output=True, text=True
    )
    assert bare.returncode == 2 and "name a command: run" in bare.stderr


def test_an_unknown_option_of_run_is_reported_with_runs_usage():
    bad = subprocess.run(
        [sys.executable, "-m", "model_registry_operator.cli", "run", "--bogus"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("usage: model-registry-operator run ")
    assert "model-registry-operator run: error: unrecognized arguments: --bogus" in bad.stderr
