"""The spend console: server-rendered pages at /ui/ for operators (admin token) and for one customer (a shared read-only link)."""
