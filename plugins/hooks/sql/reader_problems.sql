-- Why a role may not run user SQL, one row per problem (none: the role is fit).
--   %(role)s:      the role to check; NULL checks this session's login role (session_user), which
--                  is what user SQL could become again (RESET ROLE, set_config('role', ...)).
--   %(reaching)s:  predefined roles that reach the server or other sessions, with what each allows.
--   %(private)s:   the platform's own tables (schema-qualified), which the role may not touch at all.
-- Membership counts through any chain of roles (a member of a member of pg_execute_server_program
-- may SET ROLE to it), whatever INHERIT says.
WITH RECURSIVE target AS (
    SELECT oid, rolname, rolsuper, rolcreaterole, rolbypassrls, rolreplication
    FROM pg_roles
    WHERE rolname = coalesce(%(role)s::name, session_user)
), chain (roleid, path) AS (
    SELECT m.roleid, ARRAY[t.rolname::text]
    FROM pg_auth_members m
    JOIN target t ON t.oid = m.member
    UNION ALL
    SELECT m.roleid, c.path || g.rolname::text
    FROM chain c
    JOIN pg_roles g ON g.oid = c.roleid
    JOIN pg_auth_members m ON m.member = c.roleid
), reachable AS (
    SELECT g.rolname, g.rolsuper, g.rolcreaterole, c.path
    FROM chain c
    JOIN pg_roles g ON g.oid = c.roleid
), reaching (rolname, allows) AS (
    SELECT key, value FROM jsonb_each_text(%(reaching)s::jsonb)
)
SELECT 'is a superuser' AS problem FROM target WHERE rolsuper
UNION ALL
SELECT 'has CREATEROLE (it could grant itself any role)' FROM target WHERE rolcreaterole AND NOT rolsuper
UNION ALL
SELECT 'has BYPASSRLS (row-level security does not apply to it)' FROM target WHERE rolbypassrls AND NOT rolsuper
UNION ALL
SELECT 'has REPLICATION' FROM target WHERE rolreplication AND NOT rolsuper
UNION ALL
SELECT format('is a member of %%s (%%s), which %%s', r.rolname, array_to_string(r.path || r.rolname::text, ' -> '),
              CASE WHEN r.rolsuper THEN 'is a superuser' ELSE 'has CREATEROLE' END)
FROM reachable r WHERE r.rolsuper OR r.rolcreaterole
UNION ALL
SELECT format('is a member of %%s (%%s), which %%s', r.rolname, array_to_string(r.path || r.rolname::text, ' -> '), p.allows)
FROM reachable r JOIN reaching p ON p.rolname = r.rolname
UNION ALL
SELECT format('may read or change the platform table %%s', t.name)
FROM target, unnest(%(private)s::text[]) AS t (name)
WHERE to_regclass(t.name) IS NOT NULL
  AND NOT target.rolsuper
  AND (has_table_privilege(target.oid, to_regclass(t.name), 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
       OR has_any_column_privilege(target.oid, to_regclass(t.name), 'SELECT, INSERT, UPDATE, REFERENCES'))
