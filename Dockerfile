# Pinned base: a patch release of Python 3.11 on Debian bookworm. For reproducible builds pin
# the digest too (README: Build and publish the image).
FROM python:3.11.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY operator ./operator
# tests/unit/test_image_install.py runs this step in a fresh venv: keep it one pip install.
RUN pip install --no-cache-dir . && useradd --uid 65532 --no-create-home operator
USER 65532
ENTRYPOINT ["model-registry-operator"]
CMD ["run", "--all-namespaces"]
