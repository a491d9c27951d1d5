"""Notifications: a webhook POST when an execution of a queue ends with a chosen outcome.

`policy` (retry bound, backoff, how an answer is judged, URL check), `decide` (what to do next for
one execution, from its status alone), `payload` (the JSON and Slack bodies) are pure;
`webhook_url` reads the URL from a Secret and `sender` (the `Notifier` subsystem) does the POSTs
and records each step in the execution's status through the dispatcher's writer.
"""
