-- What a stored report reads (schema.table), as the planning last worked it out.
SELECT reads FROM analytics_reports WHERE id = %(report_id)s
