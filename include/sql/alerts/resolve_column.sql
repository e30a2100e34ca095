-- A live column of a relation and whether it holds a point in time (date, timestamp, timestamptz).
SELECT a.attname AS column_name,
       format_type(a.atttypid, a.atttypmod) AS data_type,
       a.atttypid IN ('date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype) AS is_time
FROM pg_catalog.pg_attribute AS a
WHERE a.attrelid = to_regclass(format('%%I.%%I', %(schema)s::text, %(name)s::text))
  AND a.attname = %(column)s
  AND a.attnum > 0
  AND NOT a.attisdropped
