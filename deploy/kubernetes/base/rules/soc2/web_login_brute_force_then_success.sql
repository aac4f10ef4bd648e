-- id: web_login_brute_force_then_success
-- title: Web login after repeated failures from the same address
-- severity: high
-- criteria: CC6.1, CC7.2, CC7.3
-- tags: web, brute-force, initial-access
-- kind: sequence
-- key: src_ip
-- window: 1h
-- steps: failed*5, succeeded
-- description: Five or more failed web logins from one address, then a successful one within the hour. A failure is
-- description: a 401, or a login form post answered 200/401/403 (the form shown again); a success is a login form
-- description: post answered with a redirect, or a request authenticated as a user (`%u`) answered below 400.
-- remediation: Treat the account that logged in as compromised: reset its password, end its sessions, review its actions.
SELECT time, event_id, src_ip, actor_user, http_path, http_status, user_agent,
       CASE WHEN http_status IN (401, 403) OR (is_login AND http_status = 200) THEN 'failed' ELSE 'succeeded' END AS step
FROM (
  SELECT *, http_method = 'POST'
            AND regexp_like(lower(split_part(http_path, '?', 1)), '(log_?in|log_?on|sign_?in|sign-in|auth)') AS is_login
  FROM events
  WHERE source = 'web.access' AND src_ip IS NOT NULL AND http_path IS NOT NULL
) AS requests
WHERE http_status = 401
   OR (is_login AND http_status IN (200, 301, 302, 303, 401, 403))
   OR (actor_user IS NOT NULL AND http_status < 400)
