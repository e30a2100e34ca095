SELECT count(*) FROM raw.customers;
