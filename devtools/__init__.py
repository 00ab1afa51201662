"""What tests, benchmarks and checks run around the product; no deployment imports it."""
