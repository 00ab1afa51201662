"""Benchmarks of the Slack source against the bundled emulator (see bench/RESULTS.md)."""
