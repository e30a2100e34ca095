-- Remember when this sample was taken and the extension's counters then.
INSERT INTO analytics_query_stats_state (id, sampled_at, stats_reset, dealloc, entries)
VALUES (1, %(sampled_at)s, %(stats_reset)s, %(dealloc)s, %(entries)s)
ON CONFLICT (id) DO UPDATE
SET sampled_at = EXCLUDED.sampled_at,
    stats_reset = EXCLUDED.stats_reset,
    dealloc = EXCLUDED.dealloc,
    entries = EXCLUDED.entries
