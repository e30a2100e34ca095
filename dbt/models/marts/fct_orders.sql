select
    order_id,
    customer_id,
    order_date,
    status,
    amount,
    status in ('shipped', 'completed') as is_revenue,
    loaded_at
from {{ ref('stg_orders') }}
{% if is_incremental() %}
where loaded_at > (select coalesce(max(loaded_at), '-infinity'::timestamptz) from {{ this }})
{% endif %}
