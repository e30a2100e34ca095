SELECT count(*) FROM raw.orders;
