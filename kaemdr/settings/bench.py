"""`make bench`: the settings `manage.py` runs by default (`local`), with the `bench` app installed for
its `manage.py bench` command, and debug off unless asked for (as in production: no debug pages, no
queries kept in memory while the benchmark measures). Production and the tests never install `bench`.
"""

from __future__ import annotations

from .local import *

DEBUG = env.bool("DJANGO_DEBUG", default=False)
INSTALLED_APPS = [*INSTALLED_APPS, "bench"]
