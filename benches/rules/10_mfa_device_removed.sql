-- id: 10_mfa_device_removed
-- title: MFA device removed
-- severity: medium
-- criteria: CC6.1
-- description: ../shared/bench/rules/10: one alert per DeactivateMFADevice / DeleteVirtualMFADevice call.
SELECT time, event_id, activity, actor_user, target_user
FROM events
WHERE json_get_str(attrs, 'eventSource') = 'iam.amazonaws.com'
  AND activity IN ('DeactivateMFADevice', 'DeleteVirtualMFADevice')
