-- Demo orders over four days; loading again refreshes loaded_at so the source is fresh.
INSERT INTO raw.orders (order_id, customer_id, ordered_at, status, amount, loaded_at)
VALUES
    (101, 1, '2026-01-10 09:15+00', 'completed', 120.00, now()),
    (102, 2, '2026-01-10 14:30+00', 'completed',  80.50, now()),
    (103, 1, '2026-01-11 10:00+00', 'returned',   45.00, now()),
    (104, 3, '2026-01-11 16:45+00', 'shipped',   210.00, now()),
    (105, 4, '2026-01-12 08:20+00', 'placed',     60.00, now()),
    (106, 2, '2026-01-12 11:05+00', 'completed',  99.90, now()),
    (107, 3, '2026-01-12 19:40+00', 'Completed',  15.10, now()),
    (108, 1, '2026-01-13 12:00+00', 'placed',     30.00, now())
ON CONFLICT (order_id) DO UPDATE
SET customer_id = EXCLUDED.customer_id,
    ordered_at = EXCLUDED.ordered_at,
    status = EXCLUDED.status,
    amount = EXCLUDED.amount,
    loaded_at = EXCLUDED.loaded_at;
