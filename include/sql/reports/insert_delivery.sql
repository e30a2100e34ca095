-- One delivery per run, channel and target (unique on the target's hash: an email target lists
-- every recipient and may be longer than an index entry).
INSERT INTO analytics_report_deliveries (run_id, channel, target, conn_id)
VALUES (%(run_id)s, %(channel)s, %(target)s, %(conn_id)s)
ON CONFLICT (run_id, channel, md5(target)) DO NOTHING
