-- id: 02_console_login_without_mfa
-- title: Console login without MFA
-- severity: medium
-- criteria: CC6.1
-- description: ../shared/bench/rules/02: one alert per successful ConsoleLogin whose MFAUsed is 'No'.
SELECT time, event_id, actor_user, actor_type, src_ip, user_agent
FROM events
WHERE activity = 'ConsoleLogin'
  AND json_get_str(attrs, 'responseElements', 'ConsoleLogin') = 'Success'
  AND json_get_str(attrs, 'additionalEventData', 'MFAUsed') = 'No'
