-- Take away the direct memberships of {member_name} in predefined roles that reach the server or
-- other sessions (reading or writing server files, running programs, signalling sessions, reading
-- all data or every session's SQL). Memberships through other roles are reported by the check.
DO $revoke$
DECLARE
    granted record;
BEGIN
    FOR granted IN
        SELECT g.rolname AS role_name
        FROM pg_auth_members m
        JOIN pg_roles g ON g.oid = m.roleid
        JOIN pg_roles u ON u.oid = m.member
        WHERE u.rolname = {member_name} AND g.rolname = ANY ({roles}::text[])
    LOOP
        EXECUTE format('REVOKE %I FROM %I', granted.role_name, {member_name});
    END LOOP;
END
$revoke$;
