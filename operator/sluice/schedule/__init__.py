"""TestSchedules: cron-scheduled executions with CronJob's semantics (decide.py is the rules)."""
