SELECT id, name, source, source_file, definition_hash, enabled FROM analytics_alerts
