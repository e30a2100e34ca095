-- A delivery worker leaves (rows it still holds 'sending' are then settled by whoever delivers
-- next), and takes with it the rows of workers not seen for a day (killed ones never retire).
DELETE FROM analytics_delivery_workers
WHERE worker_id = %(worker_id)s OR heartbeat_at < now() - interval '1 day'
