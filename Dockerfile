# syntax=docker/dockerfile:1
# monitor: the daemon image. Build: docker build -t monitor .
# Run:   docker run -p 8787:8787 -v monitor-data:/data -v ./config.toml:/etc/monitor/config.toml:ro monitor
# Demo:  docker run -p 8787:8787 monitor demo --host 0.0.0.0

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Exactly what CI tested: the lock (hash-checked), first the pip and setuptools that read
# it, then the daemon's dependencies, then monitor itself without resolving anything.
COPY requirements/pip.txt requirements/run.txt ./requirements/
RUN python -m venv /opt/monitor \
    && /opt/monitor/bin/pip install --no-compile -r requirements/pip.txt \
    && /opt/monitor/bin/pip install --no-compile -r requirements/run.txt
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN /opt/monitor/bin/pip install --no-compile --no-deps --no-build-isolation .

FROM python:3.11-slim-bookworm
# tini reaps zombies and forwards signals; the daemon itself handles SIGTERM gracefully.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.0-1 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 monitor \
    && useradd --system --uid 10001 --gid monitor --home-dir /data --no-create-home monitor \
    && mkdir -p /data /etc/monitor \
    && chown monitor:monitor /data
COPY --from=build /opt/monitor /opt/monitor
ENV PATH=/opt/monitor/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DO_NOT_TRACK=1 \
    EVIDENTLY_DISABLE_TELEMETRY=1
USER 10001:10001
WORKDIR /data
EXPOSE 8787
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8787/healthz', timeout=4).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "monitor"]
CMD ["run", "-c", "/etc/monitor/config.toml"]
