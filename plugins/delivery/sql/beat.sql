-- A delivery worker says it is alive (the first beat registers it), until when it keeps trying to
-- record outcomes, and how long without a beat makes it gone.
INSERT INTO analytics_delivery_workers (worker_id, hostname, pid, task, stale_after_seconds, deadline_at)
VALUES (%(worker_id)s, %(hostname)s, %(pid)s, %(task)s, %(stale_after)s,
        now() + make_interval(secs => %(remaining)s))
ON CONFLICT (worker_id) DO UPDATE
SET heartbeat_at = now(), deadline_at = EXCLUDED.deadline_at
