-- Runs once, when the PostgreSQL volume is first initialised (docker-entrypoint-initdb.d).
-- POSTGRES_DB already made `agent_ticket` (the app DB: tickets, audit log, constraints).
-- The target DB is the demo "production" database the agent changes; point
-- TARGET_DATABASE_URL at your real one instead (docs/operations.md).
-- Temporal's own databases are created by the temporal-schema service.
CREATE DATABASE agent_ticket_target;
