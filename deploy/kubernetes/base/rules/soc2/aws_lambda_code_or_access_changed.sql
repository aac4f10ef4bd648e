-- id: aws_lambda_code_or_access_changed
-- title: Lambda function code, layers or invoke permission changed
-- severity: medium
-- criteria: CC8.1, CC6.1
-- tags: aws, lambda, persistence, change-management
-- description: A Lambda function got new code, new layers (extensions run inside every invocation), or a resource
-- description: policy statement letting others invoke it. Outside a deployment pipeline, a common backdoor.
-- remediation: Check that the change came from the deployment role; otherwise restore the function and remove the permission.
SELECT time, event_id, activity, actor_user, src_ip, user_agent, json_get_str(attrs, 'requestParameters', 'functionName') AS function_name, cloud_account
FROM events
WHERE source = 'aws.cloudtrail'
  AND outcome = 'success'
  AND json_get_str(attrs, 'eventSource') = 'lambda.amazonaws.com'
  AND (activity LIKE 'UpdateFunctionCode%'
       OR activity LIKE 'AddPermission%'
       OR (activity LIKE 'UpdateFunctionConfiguration%' AND json_get_json(attrs, 'requestParameters', 'layers') IS NOT NULL))
