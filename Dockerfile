FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir . && useradd --uid 65532 --no-create-home operator
USER 65532
ENTRYPOINT ["model-registry-operator"]
CMD ["run", "--all-namespaces"]
