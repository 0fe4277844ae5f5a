"""Fixtures for the emulated Kubernetes API server (filled in by the harness issue)."""
