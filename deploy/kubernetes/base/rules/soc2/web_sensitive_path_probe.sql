-- id: web_sensitive_path_probe
-- title: Web probe for admin panels or leaked secrets
-- severity: low
-- criteria: CC7.2, CC6.6
-- tags: web, reconnaissance
-- description: A request for paths scanners look for: .env, .git, .aws, backups, phpMyAdmin, admin consoles,
-- description: WordPress log-in and XML-RPC. Successful responses (status below 400) deserve a look first.
-- remediation: Make sure such paths do not exist or return 404; block the client if it keeps probing.
SELECT time, event_id, src_ip, http_method, http_path, http_status, user_agent
FROM events
WHERE source = 'web.access'
  AND regexp_like(lower(http_path), '^/?([^?]*/)?(\.env|\.git/|\.git$|\.aws/|\.ssh/|\.htpasswd|phpmyadmin|pma/|wp-login\.php|xmlrpc\.php|wp-admin|administrator/|admin/|admin\.php|manager/html|server-status|backup\.(zip|sql|tar)|config\.php\.bak)')
