"""What the proxy reports: Prometheus metrics, the metric core, the request log, /metrics."""
