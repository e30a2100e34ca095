-- A report run's email delivery has every recipient in one target ("a@x, b@y, ..."): a btree
-- entry is limited to about 2.7 kB, so a unique constraint on the text overflowed past ~150
-- recipients (ProgramLimitExceeded). Deliveries stay unique per run, channel and target, through
-- the target's hash.
ALTER TABLE analytics_report_deliveries DROP CONSTRAINT analytics_report_deliveries_target_key;
CREATE UNIQUE INDEX analytics_report_deliveries_target_key
    ON analytics_report_deliveries (run_id, channel, md5(target));
