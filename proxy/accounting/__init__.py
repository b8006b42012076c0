"""Tokens to money, and the write path: usage, tokens, prices, what-if, spend, export,
the recorder and its journal."""
