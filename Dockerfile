# auth0-backfill as a container image: docker build -t auth0-backfill .
#
# Two stages: the first installs the package and its dependencies into a virtualenv, the second
# copies only that virtualenv onto a clean slim Python and runs it as an unprivileged user. No
# secret is baked in: credentials come at run time from the environment or from files named by
# <NAME>_FILE (mounted secrets). The checkpoint lives under the volume /var/lib/auth0-backfill.
#
# Signals: the job is PID 1 here, with no init in front of it. The kernel gives PID 1 only the
# signals it installed handlers for, and `run` installs its own for SIGTERM and SIGINT: the first
# stops reading and lets appends in flight finish (shutdown_grace_seconds, 30 s by default), exit
# 143; a second leaves at once. It starts no child processes, so there is nothing to reap either.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY backfill ./backfill
RUN python -m venv /opt/auth0-backfill \
    && /opt/auth0-backfill/bin/pip install --no-cache-dir . \
    && /opt/auth0-backfill/bin/auth0-backfill --help > /dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="auth0-backfill" \
      org.opencontainers.image.description="Copy an Auth0 tenant's historical logs into the Tinybird data source its Log Stream fills, resumably." \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 backfill \
    && useradd --system --uid 10001 --gid backfill --no-create-home \
       --home-dir /var/lib/auth0-backfill --shell /usr/sbin/nologin backfill \
    && mkdir -p /var/lib/auth0-backfill \
    && chown backfill:backfill /var/lib/auth0-backfill \
    && chmod 0700 /var/lib/auth0-backfill
COPY --from=build /opt/auth0-backfill /opt/auth0-backfill
ENV PATH=/opt/auth0-backfill/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AUTH0_BACKFILL_STATE=/var/lib/auth0-backfill/state.json
WORKDIR /var/lib/auth0-backfill
VOLUME ["/var/lib/auth0-backfill"]
USER 10001:10001
STOPSIGNAL SIGTERM
ENTRYPOINT ["auth0-backfill"]
CMD ["run"]
