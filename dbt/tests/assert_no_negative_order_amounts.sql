-- Singular test: an order total is never negative (refunds are a status, not a negative amount).
select order_id, amount
from {{ ref('fct_orders') }}
where amount < 0
