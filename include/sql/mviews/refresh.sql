-- Plain refresh: ACCESS EXCLUSIVE lock (readers wait), cheapest for large changes.
REFRESH MATERIALIZED VIEW {view}
