-- Exact row counts for the rows create_snapshot.sql marked, in one statement (no round trip per
-- table): query_to_xml runs each count(*) inside the server. Each count holds a lock on its table
-- until commit, so at most exact_count_max_tables are counted per run: the asked ones first, then
-- the smallest.
UPDATE catalog_snapshot
SET row_count = (
        xpath(
            '/row/n/text()',
            query_to_xml(
                'SELECT count(*) AS n FROM ' || quote_ident(schema_name) || '.' || quote_ident(object_name),
                false, true, ''
            )
        )
    )[1]::text::bigint,
    row_count_method = 'exact'
WHERE oid IN (
    SELECT oid
    FROM catalog_snapshot
    WHERE count_exact
    ORDER BY asked DESC, size_bytes, oid
    LIMIT %(exact_count_max_tables)s
)
