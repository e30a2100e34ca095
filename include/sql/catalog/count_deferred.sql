-- Rows that needed an exact count but were left out by the per-run limit (still estimate/unknown).
SELECT count(*) FROM catalog_snapshot WHERE count_exact AND row_count_method IS DISTINCT FROM 'exact'
