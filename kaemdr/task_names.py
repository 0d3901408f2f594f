"""The registered names of kaemdr's Celery tasks, for the code that enqueues them.

Tasks call services, so services never import the tasks: they enqueue by name
(`outbox.enqueue(task_names.STAFF_INVITATION_SEND, ...)`), and `kaemdr.tasks` registers each task
under the name written here. The names are stored in outbox rows and beat schedules, so they never
change: a renamed task leaves rows that name nothing.
"""

from __future__ import annotations

STAFF_INVITATION_SEND = "kaemdr.tasks.staff_invitation_send_task"
PASSWORD_RESET_SEND = "kaemdr.tasks.password_reset_send_task"
OUTBOX_SWEEP = "kaemdr.tasks.outbox_sweep_task"
