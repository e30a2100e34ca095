-- Definition and state of a batch of alerts, read (without a lock) to work out each check and
-- render its notifications; version tells lock_for_update.sql whether the row changed since.
SELECT a.*, md5(a::text) AS version
FROM analytics_alerts a
WHERE id = ANY (%(ids)s)
ORDER BY id
