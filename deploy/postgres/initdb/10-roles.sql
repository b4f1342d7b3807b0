-- deploy/postgres/initdb/10-roles.sql: the login roles of deploy/compose.yaml besides the
-- superuser (POSTGRES_USER, DB_USER of deploy/.env), which only the exporters and Grafana use.
-- The postgres image runs it (mounted in /docker-entrypoint-initdb.d) with psql, as the superuser,
-- in POSTGRES_DB, once: when the data volume is empty. For an existing volume run it by hand:
--   docker compose -f deploy/compose.yaml exec postgres sh -c \
--     'psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f /docker-entrypoint-initdb.d/10-roles.sql'
-- The passwords come from the container's environment (compose.yaml, from deploy/.env).
\set ON_ERROR_STOP on
\getenv app_password APP_DB_PASSWORD
\getenv remediation_password REMEDIATION_DB_PASSWORD
\getenv audit_password AUDIT_DB_PASSWORD

-- The demo app (saas-api, the guide's application). Not a superuser: postgres.terminate_idle
-- never ends a superuser's sessions, so runbook 3 could not free the connections it leaks.
CREATE ROLE catalytic_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';

-- The policy's postgres target (REMEDIATION_POSTGRES_DSN): ends other roles' idle sessions
-- (pg_signal_backend; never a superuser's) and sees their state in pg_stat_activity
-- (pg_read_all_stats). Not a superuser.
CREATE ROLE tocsin_remediation LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
    PASSWORD :'remediation_password';
GRANT pg_signal_backend, pg_read_all_stats TO tocsin_remediation;

-- The audit trail (TOCSIN_REMEDIATION__AUDIT_DSN): creates the table tocsin_remediation_audit
-- on first use, in its own schema (first on its search_path, "$user").
CREATE ROLE tocsin_audit LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'audit_password';
CREATE SCHEMA tocsin_audit AUTHORIZATION tocsin_audit;
