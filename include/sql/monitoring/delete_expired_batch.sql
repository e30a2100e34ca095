-- {table} and {column} are identifiers filled in with psycopg.sql; one batch per transaction.
DELETE FROM {table}
WHERE id IN (
    SELECT id FROM {table}
    WHERE {column} < now() - make_interval(days => %(days)s)
    ORDER BY id
    LIMIT %(batch_size)s
)
