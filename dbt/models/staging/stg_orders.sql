select
    order_id,
    customer_id,
    ordered_at,
    (ordered_at at time zone 'UTC')::date as order_date,
    lower(status) as status,
    amount::numeric(12, 2) as amount,
    loaded_at
from {{ source('raw', 'orders') }}
