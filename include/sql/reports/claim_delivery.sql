-- Atomic claim of one delivery by a delivery worker (committed before anything is sent): a row
-- 'sending' is another worker's until that worker is gone (settle_deliveries.sql), and a sent one
-- is never claimed again, so a delivery is never sent twice. Idempotent for the claiming worker
-- (a claim written again after its answer was lost returns the same row, the attempt counted once).
UPDATE analytics_report_deliveries
SET status = 'sending', claimed_by = %(worker)s,
    attempts = CASE WHEN status = 'sending' THEN attempts ELSE attempts + 1 END,
    claimed_at = CASE WHEN status = 'sending' THEN claimed_at ELSE now() END
WHERE id = %(delivery_id)s
  AND ((attempts < %(max_attempts)s AND status IN ('pending', 'failed'))
       OR (status = 'sending' AND claimed_by = %(worker)s))
RETURNING id, attempts
