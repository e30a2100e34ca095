-- Lock a batch of alerts until the evaluation results are written; version is the one
-- select_for_recording.sql returned if the row did not change since it was read.
SELECT id, md5(a::text) AS version
FROM analytics_alerts a
WHERE id = ANY (%(ids)s)
ORDER BY id
FOR UPDATE
