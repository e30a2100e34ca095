-- The previous sample: when it was taken and the extension's reset / eviction counters then.
SELECT sampled_at, stats_reset, dealloc FROM analytics_query_stats_state WHERE id = 1
