"""Budgets: rules and periods, the book of budgets in force, reservation and settlement,
the offline ledger, alerts and their delivery, and the service used by API and CLI."""
