-- id: github_security_control_disabled
-- title: GitHub security control turned off
-- severity: medium
-- criteria: CC6.1, CC7.1, CC8.1
-- tags: github, configuration
-- description: SAML single sign-on, the IP allow list, OAuth app restrictions, secret scanning, push protection,
-- description: advanced security or Dependabot alerts were turned off for an organization, enterprise or repository.
-- remediation: Turn the control back on unless an approved change explains it.
SELECT time, event_id, activity, actor_user, target_resource, cloud_account
FROM events
WHERE source = 'github.audit'
  AND activity IN ('org.saml_disabled', 'ip_allow_list.disable', 'org.disable_oauth_app_restrictions',
                   'secret_scanning.disable', 'secret_scanning_new_repos.disable',
                   'repository_secret_scanning_push_protection.disable', 'business_advanced_security.disabled',
                   'dependabot_alerts.disable', 'dependabot_alerts_new_repos.disable')
