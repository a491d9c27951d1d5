"""The validating admission webhook the operator serves: QueueFull (HTTP 429) at `kubectl apply`,
and who moved a waiting execution's priority. `decision` decides (pure), `review` is the wire
shape of an AdmissionReview, `server` is the HTTPS endpoint."""
