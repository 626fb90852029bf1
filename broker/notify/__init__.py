"""Change events -> subscription matching -> HTTP delivery, retries, delivery state (ARCHITECTURE decision 6)."""
