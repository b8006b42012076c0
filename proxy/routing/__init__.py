"""Where a request goes: routes and the choice of target, retries, circuit breakers, and
what is known of each target's health."""
