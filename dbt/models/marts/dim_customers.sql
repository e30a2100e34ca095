with orders as (
    select
        customer_id,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        count(*) as order_count,
        sum(case when status in ('shipped', 'completed') then amount else 0 end) as lifetime_value
    from {{ ref('stg_orders') }}
    group by customer_id
)

select
    customers.customer_id,
    customers.customer_name,
    customers.country_code,
    orders.first_order_date,
    orders.last_order_date,
    coalesce(orders.order_count, 0) as order_count,
    coalesce(orders.lifetime_value, 0)::numeric(14, 2) as lifetime_value
from {{ ref('stg_customers') }} as customers
left join orders on orders.customer_id = customers.customer_id
