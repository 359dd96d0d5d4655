-- Database and least-privilege roles for running parley against an
-- external PostgreSQL (14 or newer). Run as a superuser, e.g.
--   psql -v owner_pw="'…'" -v app_pw="'…'" -v reader_pw="'…'" -f postgres-roles.sql
-- then point parley at the app role:
--   PARLEY_DATABASE_URL=postgres://parley_app:…@db.example.org/parley?sslmode=verify-full
--
-- Roles:
--   parley_owner   owns the schema; used only by `parley migrate` (DDL).
--   parley_app     what `parley serve` and the CLI use: reads and writes
--                  rows, no DDL. (Start-up migration then finds nothing to
--                  do; run `parley migrate` with the owner role on upgrade.)
--   parley_reader  read-only; what the IMAP archive uses when
--                  database.reader_url is set (it needs SELECT and LISTEN,
--                  nothing else), for reporting, and for backups.

CREATE ROLE parley_owner LOGIN PASSWORD :owner_pw;
CREATE ROLE parley_app LOGIN PASSWORD :app_pw;
CREATE ROLE parley_reader LOGIN PASSWORD :reader_pw;

CREATE DATABASE parley OWNER parley_owner ENCODING 'UTF8' TEMPLATE template0;
\connect parley

REVOKE ALL ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO parley_owner;
GRANT USAGE ON SCHEMA public TO parley_app, parley_reader;

-- Tables and sequences the owner creates in migrations are usable by the
-- app (read/write) and the reader (read-only) without further grants.
ALTER DEFAULT PRIVILEGES FOR ROLE parley_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO parley_app;
ALTER DEFAULT PRIVILEGES FOR ROLE parley_owner IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO parley_app;
ALTER DEFAULT PRIVILEGES FOR ROLE parley_owner IN SCHEMA public
    GRANT SELECT ON TABLES TO parley_reader;

-- Advisory locks (migrations) and LISTEN/NOTIFY need no grants.
