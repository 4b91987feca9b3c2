"""Areas, departments, staff roles and scopes, the audit chain and the job queue."""
