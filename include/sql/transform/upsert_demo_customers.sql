-- Demo customers; loading again refreshes loaded_at so the source is fresh.
INSERT INTO raw.customers (customer_id, name, email, country, signed_up_at, loaded_at)
VALUES
    (1, 'Ada Lovelace',      ' Ada@Example.com ',      'gb', '2025-11-02 10:00+00', now()),
    (2, 'Grace Hopper',      'grace@example.com',      'us', '2025-11-15 12:30+00', now()),
    (3, 'Alan Turing',       'alan@example.com',       'gb', '2025-12-01 08:00+00', now()),
    (4, 'Katherine Johnson', 'katherine@example.com',  'us', '2025-12-20 17:45+00', now()),
    (5, 'Hedy Lamarr',       'hedy@example.com',       'at', '2026-01-05 09:10+00', now())
ON CONFLICT (customer_id) DO UPDATE
SET name = EXCLUDED.name,
    email = EXCLUDED.email,
    country = EXCLUDED.country,
    signed_up_at = EXCLUDED.signed_up_at,
    loaded_at = EXCLUDED.loaded_at;
