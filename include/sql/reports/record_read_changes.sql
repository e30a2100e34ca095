-- Note on every report that reads a changed relation when it changed: changed is a JSON object
-- {"schema.table": "<ISO timestamp>", ...}; a later time replaces an earlier one, never the reverse.
UPDATE analytics_reports AS r
SET reads_changed_at = r.reads_changed_at || coalesce((
        SELECT jsonb_object_agg(c.key, c.value)
        FROM jsonb_each_text(%(changed)s::jsonb) AS c (key, value)
        WHERE c.key = ANY (r.reads)
          AND coalesce((r.reads_changed_at ->> c.key)::timestamptz < c.value::timestamptz, true)
    ), '{}'::jsonb)
WHERE r.reads && ARRAY(SELECT jsonb_object_keys(%(changed)s::jsonb))
