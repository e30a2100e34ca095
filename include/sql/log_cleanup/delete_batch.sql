-- One batch of rows older than the retention, oldest first, in its own short transaction.
-- SKIP LOCKED: rows another session is writing are left for the next batch or run.
-- {table}, {id}, {timestamp}: the log table, its key and its time column (a fixed list in code).
WITH doomed AS (
    SELECT {id}
    FROM {table}
    WHERE {timestamp} < now() - make_interval(days => %(retention_days)s)
    ORDER BY {id}
    LIMIT %(batch_size)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM {table} AS t
USING doomed
WHERE t.{id} = doomed.{id}
