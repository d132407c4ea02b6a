-- Data quality: accepted events per day and API key name (events sent
-- without authentication or before key names were kept show as `(none)`).
SELECT e.dt AS day, COALESCE(e.key_name, '(none)') AS key_name, COUNT(*) AS events
FROM events_unique e
GROUP BY e.dt, COALESCE(e.key_name, '(none)')
ORDER BY day, key_name
