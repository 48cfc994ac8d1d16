#!/bin/sh
# Creates Temporal's two databases if missing and brings their schemas to this image's
# version. Safe to run on every `docker compose up`: setup-schema skips a database that is
# already versioned and update-schema applies only what is new, so a Temporal upgrade is
# "change TEMPORAL_VERSION, compose up".
set -eu

: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
PORT="${DB_PORT:-5432}"
SCHEMA_ROOT=/etc/temporal/schema/postgresql/v12

sql_tool() {
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$PORT" -u "$POSTGRES_USER" "$@"
}

for pair in "${DBNAME:-temporal}:temporal" "${VISIBILITY_DBNAME:-temporal_visibility}:visibility"; do
    db="${pair%%:*}"
    schema="${pair#*:}"
    # `create` fails when the database exists; a real failure (auth, network) fails setup-schema below.
    sql_tool --db "$db" create 2>/dev/null && echo "created database $db" || echo "database $db exists"
    sql_tool --db "$db" setup-schema -v 0.0
    sql_tool --db "$db" update-schema -d "$SCHEMA_ROOT/$schema/versioned"
done
echo "Temporal schema is up to date"
