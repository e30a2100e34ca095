-- What a delivery problem notice needs of the alerts it is about.
SELECT id, name, owner, severity, channels
FROM analytics_alerts
WHERE id = ANY (%(ids)s)
