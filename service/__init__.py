"""The Temporal client side: connecting to Temporal, and starting, reading and deciding on tickets."""
