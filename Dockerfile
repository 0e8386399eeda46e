# syntax=docker/dockerfile:1
# The production image: review-bot and its runtime dependencies only (`pip install .`, no extras), so
# mlflow-skinny rather than mlflow, and no scikit-learn, test tools or build tools.
# docs/mlflow-skinny.md has the figures behind that; tests/test_packaging.py checks this file and
# reproduces its install in a fresh venv.
#
#   docker build -t review-bot .
#   docker run --rm -p 3000:3000 --env-file .env review-bot            # HTTP mode (serve)
#   docker run --rm --env-file .env review-bot socket                  # Socket Mode

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src
# Only what the wheel is built from (README.md is the package's readme), so edits elsewhere keep the cache.
COPY pyproject.toml README.md app.py ./
COPY bot/ bot/
COPY handlers/ handlers/
# A regular (non-editable) install builds the wheel and installs it with its dependencies into /opt/venv;
# pip compiles the .pyc files here, so the runtime stage never needs to write any.
RUN /opt/venv/bin/pip install --no-cache-dir .

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    MPLCONFIGDIR=/tmp/matplotlib \
    PORT=3000
# Fonts for chart text beyond Latin, Greek and Cyrillic (matplotlib's own DejaVu Sans): CJK from
# fonts-droid-fallback and monochrome emoji from fonts-symbola, the fallback chain in bot/charts.py.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-droid-fallback fonts-symbola \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 reviewbot \
    && useradd --system --uid 10001 --gid reviewbot --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin reviewbot
COPY --from=builder /opt/venv /opt/venv
# An empty working directory: Settings also reads ./.env, which should come from the environment here.
WORKDIR /app
# Numeric, so an orchestrator's runAsNonRoot check can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 3000
# /healthz answers 200 while the process serves (both `serve` and `socket`); no curl in slim images.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${PORT}/healthz', timeout=4)"
ENTRYPOINT ["review-bot"]
CMD ["serve"]
