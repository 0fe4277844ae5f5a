"""Fixtures for the moto SageMaker/S3 endpoint (filled in by the harness issue)."""
