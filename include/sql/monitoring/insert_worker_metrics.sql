INSERT INTO worker_metrics (
    hostname, cpu_percent, cpu_count, memory_percent, memory_used_bytes, memory_total_bytes,
    disk_percent, disk_used_bytes, disk_total_bytes, load_1m, load_5m, load_15m, details
)
VALUES (
    %(hostname)s, %(cpu_percent)s, %(cpu_count)s, %(memory_percent)s, %(memory_used_bytes)s, %(memory_total_bytes)s,
    %(disk_percent)s, %(disk_used_bytes)s, %(disk_total_bytes)s, %(load_1m)s, %(load_5m)s, %(load_15m)s,
    %(details)s::jsonb
)
