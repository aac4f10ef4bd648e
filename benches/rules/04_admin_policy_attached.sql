-- id: 04_admin_policy_attached
-- title: AdministratorAccess attached
-- severity: high
-- criteria: CC6.3
-- description: ../shared/bench/rules/04: one alert per successful Attach{User,Role,Group}Policy of AdministratorAccess.
SELECT time, event_id, activity, actor_user, target_user, privilege
FROM events
WHERE json_get_str(attrs, 'eventSource') = 'iam.amazonaws.com'
  AND activity IN ('AttachUserPolicy', 'AttachRolePolicy', 'AttachGroupPolicy')
  AND json_get_str(attrs, 'requestParameters', 'policyArn') = 'arn:aws:iam::aws:policy/AdministratorAccess'
  AND json_get_str(attrs, 'errorCode') IS NULL
