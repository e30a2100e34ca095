-- The first schema of this session's effective search path (where an unqualified name that
-- resolves to nothing yet would be looked for first), or NULL.
SELECT (current_schemas(false))[1]
