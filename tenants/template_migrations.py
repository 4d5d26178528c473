"""`migrate_schemas --executor=template`: migrate the template schema, then replay the same SQL in
every organization's schema that was where the template was.

django-tenants' executors run Django's whole `migrate` once per schema: the migration graph
loaded, the database state read and the plan made again, about a second each, so a column added
over 1,000 organizations took minutes even in parallel. Every organization's schema is a copy of
the template (tenants.provisioning) kept at the same migrations, so the plan and its SQL are the
same for all of them: made once (Django's own `collect_sql`, as `sqlmigrate` prints it, with
unqualified names that the schema's search_path resolves), then run in each schema in a
transaction of its own with the django_migrations rows Django would write.

Anything that cannot be replayed that way goes through django-tenants' standard executor instead,
so the result is the same, only slower: a plan with an operation that is not SQL (RunPython) or a
migration that is not atomic, the options that change what migrate does (--fake, --plan, ...), and
any schema whose applied migrations differ from the template's before the run."""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.db.migrations.executor import MigrationExecutor as DjangoMigrationExecutor
from django.db.migrations.migration import Migration
from django_tenants.migration_executors import get_executor as tenants_get_executor
from django_tenants.migration_executors.base import MigrationExecutor, run_migrations
from django_tenants.migration_executors.standard import StandardExecutor
from django_tenants.signals import schema_migrated

from core import clock

# Options of migrate_schemas under which the standard executor must do the work.
_NOT_REPLAYED = ("fake", "fake_initial", "plan", "check_unapplied", "prune", "run_syncdb")

Plan = list[tuple[Migration, bool]]


def get_executor(codename: str | None = None) -> type[MigrationExecutor]:
    """django-tenants' executor lookup (settings.GET_EXECUTOR_FUNCTION), knowing this one too."""
    if codename == TemplateReplayExecutor.codename:
        return TemplateReplayExecutor
    return tenants_get_executor(codename)


def _applied(connection: Any, schema_name: str) -> set[tuple[str, str]]:
    quoted = schema_name.replace('"', '""')
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT app, name FROM "{quoted}".django_migrations')  # noqa: S608 (a schema name)
        return {(app, name) for app, name in cursor.fetchall()}


class TemplateReplayExecutor(MigrationExecutor):
    codename = "template"

    def run_migrations(self, tenants: Any = None) -> None:
        schemas = list(tenants or [])
        if self.PUBLIC_SCHEMA_NAME in schemas:
            run_migrations(self.args, self.options, self.codename, self.PUBLIC_SCHEMA_NAME)
            schemas.remove(self.PUBLIC_SCHEMA_NAME)
        if not schemas:
            return
        template = settings.TENANT_BASE_SCHEMA
        if template not in schemas or any(self.options.get(option) for option in _NOT_REPLAYED):
            StandardExecutor(self.args, self.options).run_migrations(tenants=schemas)
            return
        connection: Any = connections[self.TENANT_DB_ALIAS]  # django-tenants' wrapper
        connection.set_schema(template)
        before = _applied(connection, template)
        plan = self._plan(connection)
        statements = self._replayable_sql(connection, plan)
        run_migrations(self.args, self.options, self.codename, template)
        others = [schema for schema in schemas if schema != template]
        replayed, standard = 0, []
        for schema in others:
            if statements is None or _applied(connection, schema) != before:
                standard.append(schema)
                continue
            self._replay(connection, schema, plan, statements)
            replayed += 1
        connection.set_schema_to_public()
        if int(self.options.get("verbosity", 1)) >= 1:
            sys.stdout.write(
                f"[template] {len(plan)} migrations: replayed in {replayed} schemas,"
                f" migrated one by one in {len(standard)}\n"
            )
        if standard:
            StandardExecutor(self.args, self.options).run_migrations(tenants=standard)

    def run_multi_type_migrations(self, tenants: Any) -> None:
        StandardExecutor(self.args, self.options).run_multi_type_migrations(tenants)

    def _plan(self, connection: Any) -> Plan:
        """The plan `migrate` would make for the template, from the command's app and migration."""
        executor = DjangoMigrationExecutor(connection)
        app_label, name = self.options.get("app_label"), self.options.get("migration_name")
        graph = executor.loader.graph
        if app_label and name:
            target = None if name == "zero" else executor.loader.get_migration_by_prefix(app_label, name).name
            targets = [(app_label, target)]
        elif app_label:
            targets = [key for key in graph.leaf_nodes() if key[0] == app_label]
        else:
            targets = graph.leaf_nodes()
        return executor.migration_plan(targets)

    def _replayable_sql(self, connection: Any, plan: Plan) -> list[str] | None:
        """The plan's SQL, or None when it cannot be replayed as SQL alone."""
        if any(
            not migration.atomic or not all(operation.reduces_to_sql for operation in migration.operations)
            for migration, _ in plan
        ):
            return None
        loader: Any = DjangoMigrationExecutor(connection).loader  # collect_sql is missing from the stubs
        collected: list[str] = loader.collect_sql(plan) if plan else []
        # collect_sql describes each operation in comment lines; only statements are run.
        return [statement for statement in collected if not statement.lstrip().startswith("--")]

    def _replay(self, connection: Any, schema: str, plan: Plan, statements: list[str]) -> None:
        connection.set_schema(schema)
        applied: list[tuple[str, str]] = []
        unapplied: list[tuple[str, str]] = []
        for migration, backwards in plan:  # the rows Django's executor records
            own = [(migration.app_label, migration.name)]
            if backwards:
                unapplied += [*migration.replaces, *own] if migration.replaces else own
            else:
                applied += migration.replaces or own
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
            # The schema's own django_migrations (first on its search_path), as MigrationRecorder
            # writes it, without its table check: every schema here has the table.
            for app_label, name in unapplied:
                cursor.execute(
                    "DELETE FROM django_migrations WHERE app = %s AND name = %s", [app_label, name]
                )
            for app_label, name in applied:
                cursor.execute(
                    "INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, %s)",
                    [app_label, name, clock.now()],
                )
        schema_migrated.send(run_migrations, schema_name=schema)
