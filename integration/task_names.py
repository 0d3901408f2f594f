"""The registered names of integration's Celery tasks, for the code that enqueues them.

Tasks call services, so services never import the tasks: they enqueue by name
(`outbox.enqueue(task_names.SUMMARY_RENDER, ...)`), and `integration.tasks` registers each task
under the name written here. The names are stored in outbox rows and beat schedules, so they never
change: a renamed task leaves rows that name nothing.
"""

from __future__ import annotations

FOLLOW_UPS_DISPATCH = "integration.tasks.follow_ups_dispatch"
SUMMARY_RENDER = "integration.tasks.summary_render_task"
