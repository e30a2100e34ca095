INSERT INTO analytics_report_deliveries (run_id, channel, target, conn_id)
VALUES (%(run_id)s, %(channel)s, %(target)s, %(conn_id)s)
ON CONFLICT (run_id, channel, target) DO NOTHING
