-- Concurrent refresh: EXCLUSIVE lock, readers continue; the changes are applied as a diff.
REFRESH MATERIALIZED VIEW CONCURRENTLY {view}
