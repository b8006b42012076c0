"""The spend console: server-rendered pages at /ui/ for the operator (admin token) and for one
customer (a read-only link)."""
