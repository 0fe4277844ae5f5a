# Harness fixtures live in tests/harness (importable as `harness`, see pythonpath in pyproject).
pytest_plugins = ["harness.kube.fixtures", "harness.aws.fixtures"]
