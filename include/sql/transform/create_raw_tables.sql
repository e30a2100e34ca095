-- The raw tables the demo dbt project reads (sources `raw.customers` and `raw.orders`).
CREATE SCHEMA IF NOT EXISTS raw;

CREATE TABLE IF NOT EXISTS raw.customers (
    customer_id  integer     PRIMARY KEY,
    name         text        NOT NULL,
    email        text        NOT NULL,
    country      text        NOT NULL,
    signed_up_at timestamptz NOT NULL,
    loaded_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS raw.orders (
    order_id    integer       PRIMARY KEY,
    customer_id integer       NOT NULL,
    ordered_at  timestamptz   NOT NULL,
    status      text          NOT NULL,
    amount      numeric(12,2) NOT NULL,
    loaded_at   timestamptz   NOT NULL DEFAULT now()
);
