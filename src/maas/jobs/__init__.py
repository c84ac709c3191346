"""Training jobs as a service: submission, a runner that starts worker processes, the worker.

- ``maas.jobs.submission`` validates a spec (in a throw-away process) and queues the job
- ``maas.jobs.runner``     ``JobRunner``, the interface the server drives, and
                           ``LocalJobRunner``, which runs jobs in worker processes here
- ``maas.jobs.worker``     ``python -m maas.jobs.worker JOB_ID``: runs one job, reporting
                           progress, metrics, logs and checkpoints to the registry database

Only the worker imports torch; the server imports submission and runner, never the worker.
"""

from __future__ import annotations

__all__: list[str] = []
