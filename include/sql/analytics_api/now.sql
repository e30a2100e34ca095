-- The database's clock: the end of the notification window.
SELECT now()
