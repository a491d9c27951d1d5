# syntax=docker/dockerfile:1.7
# Two images from one file:
#   docker build --target operator -t sluice-operator .   # `sluice operator` (kopf, dispatcher, Lease)
#   docker build --target runner   -t sluice-runner .     # `python -m sluice_runner`: Chromium, ffmpeg,
#                                                          # pytest-playwright and @playwright/test
# Both run as the non-root user 65532 and take pinned versions only: base images by tag, Python
# packages by ==, @playwright/test by runner/node/package-lock.json. Debian packages come from the
# pinned base image's release (Debian stable only ships security fixes, so they are not pinned
# one by one: an exact pin breaks the build as soon as a fix replaces the version).

ARG PYTHON_IMAGE=python:3.12.12-slim-bookworm
ARG NODE_IMAGE=node:22.21.1-bookworm-slim

# ---- the sluice wheel (operator and runner packages; dependencies are pinned per image below) ----
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
RUN pip install --no-cache-dir "setuptools==80.9.0" "wheel==0.45.1"
COPY pyproject.toml README.md ./
COPY operator/ operator/
COPY runner/sluice_runner/ runner/sluice_runner/
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

# ---- @playwright/test exactly as locked (npm is needed only here) ---------------------------------
FROM ${NODE_IMAGE} AS node-modules
WORKDIR /opt/sluice/node
COPY runner/node/package.json runner/node/package-lock.json ./
RUN PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --omit=dev --no-audit --no-fund --loglevel=error \
    && test -f node_modules/@playwright/test/cli.js

# ---- operator ----------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS operator
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    pip install --no-cache-dir \
        "kopf==1.45.2" "kubernetes_asyncio==36.1.0" "kubernetes==37.0.1" "aiohttp==3.14.5" \
        "pydantic==2.14.3" "pydantic-settings==2.14.1" "prometheus-client==0.26.0" "PyYAML==6.0.3" \
        "boto3==1.43.11" "cronsim==2.8" \
    && pip install --no-cache-dir --no-deps /wheels/sluice-*.whl \
    && python -c "import sluice.operator_main"
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["sluice"]
CMD ["operator"]

# ---- runner ------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runner
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PLAYWRIGHT_BROWSERS_PATH=/opt/ms-playwright \
    SLUICE_CHROMIUM=/usr/bin/chromium \
    SLUICE_NODE_MODULES=/usr/local/lib/node_modules \
    HOME=/home/runner
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium ffmpeg git ca-certificates fonts-liberation \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    pip install --no-cache-dir \
        "playwright==1.65.2" "pytest==9.2.0" "pytest-playwright==0.10.0" "pytest-html==4.2.0" \
        "pydantic==2.14.3" "pydantic-settings==2.14.1" "boto3==1.43.11" \
    && pip install --no-cache-dir --no-deps /wheels/sluice-*.whl
COPY --from=node-modules /opt/sluice/node/node_modules /usr/local/lib/node_modules
# Node itself: the Python playwright package already ships the Node binary its driver runs on;
# linking it avoids a second ~100 MB copy, and @playwright/test (same Playwright release) runs on it.
# Playwright records video only through its own ffmpeg path; point every revision we ship at
# Debian's ffmpeg (what hack/install-runner-deps does on a developer machine).
RUN set -eu; \
    driver="$(python -c 'import os, playwright; print(os.path.join(os.path.dirname(playwright.__file__), "driver"))')"; \
    ln -s "$driver/node" /usr/local/bin/node; \
    node --version; \
    for bj in "$driver/package/browsers.json" /usr/local/lib/node_modules/playwright-core/browsers.json; do \
        rev="$(python -c 'import json, sys; print(next(b["revision"] for b in json.load(open(sys.argv[1]))["browsers"] if b["name"] == "ffmpeg"))' "$bj")"; \
        mkdir -p "$PLAYWRIGHT_BROWSERS_PATH/ffmpeg-$rev"; \
        ln -sf /usr/bin/ffmpeg "$PLAYWRIGHT_BROWSERS_PATH/ffmpeg-$rev/ffmpeg-linux"; \
    done; \
    useradd --uid 65532 --user-group --home-dir /home/runner --create-home --shell /usr/sbin/nologin runner; \
    python -c "import sluice_runner, pytest_playwright, pytest_html"
USER 65532:65532
WORKDIR /home/runner
CMD ["python", "-m", "sluice_runner"]
