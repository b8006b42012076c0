"""The `costproxy` command line."""
