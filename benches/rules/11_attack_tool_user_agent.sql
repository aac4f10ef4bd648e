-- id: 11_attack_tool_user_agent
-- title: Attack tool user agent
-- severity: medium
-- criteria: CC7.2
-- description: ../shared/bench/rules/11: one alert per event whose userAgent contains one of the listed substrings
-- description: (case-sensitive).
SELECT time, event_id, activity, actor_user, src_ip, user_agent
FROM events
WHERE user_agent LIKE '%python-requests/%'
   OR user_agent LIKE '%curl/%'
   OR user_agent LIKE '%sqlmap%'
   OR user_agent LIKE '%pacu%'
   OR user_agent LIKE '%kali%'
