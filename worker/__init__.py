"""Building and running the Temporal workers."""
