"""What the Prefect flow needs around dlt: settings, pipeline runs, summaries, the CLI, the demo."""
