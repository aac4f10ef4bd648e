-- id: attack_tool_user_agent
-- title: Request from a known attack or scanning tool
-- severity: medium
-- criteria: CC7.2
-- tags: web, aws, reconnaissance
-- description: The client's user agent names an offensive tool (sqlmap, nikto, nmap, masscan, zgrab, gobuster,
-- description: wpscan, hydra, Pacu, Stratus Red Team, ...), on the web or against a cloud API.
-- remediation: Block the source; check whether anything it requested succeeded.
-- description: One run of a tool from one source is one incident: one alert per source, principal and user
-- description: agent per hour, with the number of requests, their first and last time and the event ids.
-- group_by: src_ip, actor_user, user_agent
-- suppress: 1h
SELECT time, event_id, source, activity, actor_user, src_ip, user_agent
FROM events
WHERE regexp_like(lower(user_agent), '(sqlmap|nikto|nmap|masscan|zgrab|gobuster|dirbuster|wpscan|hydra|nuclei|acunetix|netsparker|havij|w3af|pacu|stratus-red-team|kali)')
