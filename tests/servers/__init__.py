"""Applications and configurations the embedded-server tests serve."""
