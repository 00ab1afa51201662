"""Benchmarks of the Slack source against the bundled emulator (see tooling/bench/RESULTS.md)."""
