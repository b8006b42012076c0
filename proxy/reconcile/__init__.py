"""Reconciliation: the proxy's recorded spend against the provider's own usage and cost reports."""
