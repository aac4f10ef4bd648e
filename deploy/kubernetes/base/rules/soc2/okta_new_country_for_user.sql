-- id: okta_new_country_for_user
-- title: Okta sign-in from a country the user had not signed in from
-- severity: medium
-- criteria: CC6.1, CC7.2
-- tags: okta, identity, first-seen, initial-access
-- lateness: 30m
-- kind: first_seen
-- key: actor_user, country
-- ttl: 90d
-- baseline: 7d
-- description: A successful Okta sign-in from a country (Okta's geolocation of the client) not seen for that user
-- description: in the last 90 days, after a week of learning: travel, a new office, or a stolen session or password.
-- remediation: Confirm the sign-in with the user; if it was not them, reset their password and factors and end their sessions.
SELECT time, event_id, actor_user, country, src_ip, user_agent
FROM (
  SELECT *, json_get_str(attrs, 'client', 'geographicalContext', 'country') AS country
  FROM events
  WHERE source = 'okta.system_log'
    AND activity IN ('user.session.start', 'user.authentication.sso')
    AND outcome = 'success'
    AND actor_user IS NOT NULL
) AS sign_ins
WHERE country IS NOT NULL
