"""`manage.py db_roles [--migrate] [--role NAME]`: set up the app's PostgreSQL role, as the owner."""

from __future__ import annotations

import os
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.core.management.base import CommandError
from django.core.management.base import CommandParser

from kaemdr import db_roles


class Command(BaseCommand):
    help = (
        "As the database's owner (DATABASE_OWNER_URL, else DATABASE_URL), create or update the role the "
        "app connects as (DATABASE_URL's user, or --role): it owns nothing, reads and writes the app's "
        "tables, and only reads and adds audit events. Idempotent: run it after every migrate "
        "(--migrate runs the migrations first, as the owner)."
    )
    # The password comes from DATABASE_URL or KAEMDR_APP_DB_PASSWORD, never from the command line
    # (where other users of the machine could read it); call_command may pass `password`.
    stealth_options = ("password",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--migrate",
            action="store_true",
            help="Run `migrate` first, as the owner.",
        )
        parser.add_argument(
            "--role",
            default=None,
            help="The app's role (default: the user of DATABASE_URL, when DATABASE_OWNER_URL is set). "
            "Its password, if any, is read from KAEMDR_APP_DB_PASSWORD.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = options.get("password") or os.environ.get("KAEMDR_APP_DB_PASSWORD") or None
        try:
            role, password = db_roles.app_role_from_settings(role=options["role"], password=password)
            with db_roles.connected_as_owner():
                if options["migrate"]:
                    call_command(
                        "migrate",
                        interactive=False,
                        verbosity=options["verbosity"],
                        stdout=self.stdout,
                        stderr=self.stderr,
                    )
                done = db_roles.grant_app_role(role, password)
        except db_roles.RoleError as error:
            raise CommandError(str(error)) from error
        for line in done:
            self.stdout.write(line)
