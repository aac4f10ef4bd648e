-- id: web_form_submitted_too_fast
-- title: Web form posted within two seconds of being fetched (bot)
-- severity: low
-- criteria: CC6.1, CC7.2
-- tags: web, bot, credential-stuffing, spam
-- kind: sequence
-- key: src_ip, form
-- window: 2s
-- steps: fetched, posted
-- description: A client fetched a form (GET) and posted it (POST to the same path) within two seconds. People
-- description: need longer to read and fill a form; registration spam and credential-stuffing bots do not.
-- remediation: Put a rate limit or challenge on the form; review accounts registered or logged in from the address.
SELECT time, event_id, src_ip, split_part(http_path, '?', 1) AS form, http_status, user_agent,
       CASE WHEN http_method = 'GET' THEN 'fetched' ELSE 'posted' END AS step
FROM events
WHERE source = 'web.access'
  AND http_method IN ('GET', 'POST')
  AND http_status < 400
  AND src_ip IS NOT NULL
  AND http_path IS NOT NULL
