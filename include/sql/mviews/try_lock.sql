-- The per-view advisory lock (released at commit): two refreshes of one view never overlap.
SELECT pg_try_advisory_xact_lock(hashtextextended(%(lock_name)s, 0)) AS locked
