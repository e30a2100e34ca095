select
    customer_id,
    trim(name) as customer_name,
    lower(trim(email)) as email,
    upper(country) as country_code,
    signed_up_at,
    loaded_at
from {{ source('raw', 'customers') }}
