"""Test helpers that run real services on loopback."""
