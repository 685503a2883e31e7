# The operator image. Build: docker build -t modelrelease-operator .
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.12-slim
COPY --from=build /install /usr/local
# Non-root, read-only root filesystem friendly: nothing is written at run time.
USER 65532:65532
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["modelrelease-operator"]
CMD ["--all-namespaces"]
