"""What tests, benchmarks, checks and the demo run around the product; no deployment imports
it."""
