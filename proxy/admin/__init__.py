"""The HTTP admin API: one route table, the admin token checked once for every route."""
