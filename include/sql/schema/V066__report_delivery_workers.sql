-- Report deliveries are claimed by a delivery worker (plugins/delivery/recording.py) like alert
-- notifications: a row 'sending' belongs to the worker in claimed_by, and only once that worker is
-- gone (analytics_delivery_worker_status) is it settled: copied again (object storage) or marked
-- 'unknown' with the reason (email). The lease that made a dead task's delivery claimable again,
-- and so sent twice, is gone.
ALTER TABLE analytics_report_deliveries
    ADD COLUMN claimed_at    timestamptz,
    -- when the report's owner (or, without an owner address, the task log) was told that this
    -- delivery failed for good or has an unknown outcome; told once
    ADD COLUMN owner_told_at timestamptz,
    DROP COLUMN claim_expires_at;
UPDATE analytics_report_deliveries SET claimed_at = created_at WHERE status = 'sending';
