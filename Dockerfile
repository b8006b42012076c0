# costproxy: the proxy (and, for the demo profile, the fake upstream and demo traffic).
# Build: docker build -t costproxy .    Run: see docker-compose.yml
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY proxy ./proxy
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app costproxy \
    && mkdir -p /app/data \
    && chown costproxy /app/data
COPY config ./config

USER costproxy
# 8080: the OpenAI-compatible API (and /metrics unless metrics.port is set); 9464: metrics.port
EXPOSE 8080 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["costproxy"]
CMD ["serve", "--config", "/app/config/costproxy.yaml"]
