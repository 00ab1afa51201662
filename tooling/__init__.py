"""Tooling that proves the product: the Slack emulator, the offline demo, dev tools, benchmarks.

Nothing here is deployed and the product never imports it: a team can delete `tooling/` and
still run and deploy the flows from what remains (tests/test_layout.py proves it).
"""
