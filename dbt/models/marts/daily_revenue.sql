select
    order_date,
    count(*) as orders,
    sum(case when is_revenue then amount else 0 end)::numeric(14, 2) as revenue
from {{ ref('fct_orders') }}
group by order_date
