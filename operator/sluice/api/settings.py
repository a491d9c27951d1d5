"""Operator settings, read from SLUICE_* environment variables (set by the Helm chart)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Which transitions of an execution post an Event (status/event_policy.py says which are ordinary).
EventsMode = Literal["all", "notable"]


class Settings(BaseSettings):
    """Everything the operator reads from its environment; the chart sets each from values."""

    model_config = SettingsConfigDict(env_prefix="SLUICE_", extra="ignore")

    running_capacity: int = Field(5, ge=1, description="Cluster-wide cap on running executions (in shards).")
    queued_capacity: int = Field(50, ge=0, description="Cluster-wide cap on waiting executions.")
    default_timeout_seconds: int = Field(300, ge=1, le=86400)
    default_retries: int = Field(2, ge=0, le=10)
    default_backoff_initial_seconds: int = 2
    default_backoff_factor: float = 2.0
    default_backoff_max_seconds: int = 300
    runner_image: str = "ghcr.io/sluice-dev/sluice-runner:0.1.0"
    runner_image_pull_policy: str = "IfNotPresent"
    runner_cpu_request: str = "500m"
    runner_memory_request: str = "1Gi"
    runner_cpu_limit: str = ""
    runner_memory_limit: str = "2Gi"
    runner_service_account: str = Field("", description="Default ServiceAccount of runner pods ('' = namespace default).")
    allowed_images: str = Field(
        "", description="Comma-separated glob patterns of runner images every queue without its own allowedImages "
        "also allows (besides runner_image and the queue's defaults.runner.image).")
    artifacts_bucket: str = ""
    artifacts_prefix: str = ""
    artifacts_endpoint: str = ""
    artifacts_region: str = ""
    artifacts_secret: str = Field("", description="Secret (in the execution's namespace) with AWS keys.")
    job_ttl_seconds: int = Field(3600, ge=0, description="ttlSecondsAfterFinished of runner Jobs.")
    termination_grace_seconds: int = 30
    redis_url: str = Field("", description="Redis the operator reads live progress from (redis:// or rediss://); '' = no live channel.")
    redis_password: str = Field("", description="Password of the operator's Redis user (from a Secret).")
    runner_redis_url: str = Field("", description="Redis URL runner pods append progress to ('' = the same as redis_url).")
    runner_redis_secret: str = Field(
        "", description="Secret (in the execution's namespace) whose key `password` holds the runners' Redis password.")
    namespaces: str = Field("", description="Comma-separated namespaces to watch; empty = all.")
    position_head: int = Field(10, ge=0, description="Queue ranks kept within position_head_lag_seconds of the truth; deeper ones within a factor of 2.")
    position_head_lag_seconds: float = Field(5.0, gt=0, description="Most a head rank may lag behind the true rank.")
    position_writes_per_second: float = Field(
        50.0, gt=0, description="Safety budget for position and estimate writes (most urgent first); phase changes are not limited.")
    best_effort_reserve_seconds: float = Field(
        60.0, ge=0, description="Under BestEffortFIFO, an execution that cannot start lets smaller ones pass until it "
                                "has waited this long; then it holds what it waits for (no starvation).")
    environment_missing_grace_seconds: float = Field(
        10.0, ge=0, description="An execution naming a TestEnvironment that does not exist waits this long for it "
                                "(applied together) before it is Rejected.")
    queue_status_interval_seconds: float = 5.0
    resync_seconds: float = 60.0
    write_concurrency: int = 32
    events: EventsMode = Field(
        "notable", description="'notable': no Event for an execution's ordinary course (admitted, passed: its "
        "conditions say it); every other transition posts one. 'all': an Event for every transition.")
    lease_name: str = "sluice-operator"
    lease_namespace: str = ""
    lease_duration_seconds: float = 15.0
    lease_renew_seconds: float = 5.0
    metrics_port: int = 8080
    health_port: int = 8081
    webhook_port: int = Field(
        9443, ge=0, le=65535, description="HTTPS port of the admission webhook (QueueFull at create, who changed a "
        "priority); 0 = off. Served only when webhook_cert_dir holds tls.crt and tls.key.")
    webhook_cert_dir: str = Field(
        "/etc/sluice/webhook", description="Directory with the webhook's tls.crt and tls.key (the chart mounts its "
        "generated Secret here).")

    @property
    def watch_namespaces(self) -> list[str]:
        return [ns.strip() for ns in self.namespaces.split(",") if ns.strip()]

    @property
    def allowed_image_patterns(self) -> list[str]:
        return [p.strip() for p in self.allowed_images.split(",") if p.strip()]
