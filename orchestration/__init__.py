"""What the Prefect flows need around dlt: settings, pre-flight, pipeline runs, summaries, the CLI.

Every flow file imports this package first, however it is started (run.sh, the flow file
itself, a served deployment, a worker's flow-run process): the allocator settings of a run
are applied here, before any of its threads start (`orchestration.memory`).
"""

from .memory import tune_allocators

tune_allocators()
