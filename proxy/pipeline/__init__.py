"""The request path, as small steps: authenticate, parse, route, forward, settle."""
