-- Data quality: rejected events per day, API key name and the rule of
-- their first problem.
SELECT
    d.dt AS day,
    COALESCE(d.key_name, '(none)') AS key_name,
    d.first_problem.rule AS rule,
    COUNT(*) AS dead_letters
FROM (
    SELECT dt, key_name, element_at(problems, 1) AS first_problem FROM dead_letter
) d
GROUP BY d.dt, COALESCE(d.key_name, '(none)'), d.first_problem.rule
ORDER BY day, key_name, rule
