"""Who may call and how often: keys, authentication, attribution, rate limits, and the
key/customer service used by the admin API and the CLI."""
