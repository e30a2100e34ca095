-- The owner was told (once) that this delivery failed for good or has an unknown outcome.
UPDATE analytics_report_deliveries
SET owner_told_at = now()
WHERE id = ANY (%(delivery_ids)s::bigint[]) AND owner_told_at IS NULL
