-- id: github_branch_protection_removed
-- title: GitHub branch protection removed or overridden
-- severity: high
-- criteria: CC8.1, CC6.1
-- tags: github, change-management
-- description: A branch protection rule or repository ruleset was deleted, or an admin pushed past branch
-- description: protection: changes can reach a protected branch without the reviews the change process requires.
-- remediation: Restore the protection; review what was merged or pushed while it was off or overridden.
SELECT time, event_id, activity, actor_user, target_resource, cloud_account
FROM events
WHERE source = 'github.audit'
  AND activity IN ('protected_branch.destroy', 'protected_branch.policy_override', 'repository_ruleset.destroy')
