"""The benchmark harness: direct to the fake upstream vs through the proxy, side by side."""
