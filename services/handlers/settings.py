"""Handlers settings, from the environment (docs/contract.md §5 and §7)."""

from pydantic import Field

from services.infra.settings import CommonSettings, SecretsSettings


class HandlersSettings(CommonSettings, SecretsSettings):
    """Everything the handlers read from their environment."""

    handlers_http_host: str = Field(
        default="127.0.0.1",
        description="Address of /healthz, /readyz, /metrics; containers set 0.0.0.0.",
    )
    handlers_http_port: int = Field(
        default=6067, ge=1, le=65535, description="Port of the handlers' health and metrics."
    )
    handlers_group_id: str = Field(
        default="handlers", description="Consumer group of the command topics."
    )
    handlers_source: str = Field(default="/handlers", description="CloudEvents source of results.")
    max_in_flight: int = Field(
        default=5000,
        ge=1,
        description="Commands held at once (running or waiting behind their key); fetching "
        "pauses beyond it.",
    )
    commit_interval_seconds: float = Field(
        default=0.5, gt=0, description="How often finished offsets are committed."
    )
    vendor_request_timeout_seconds: float = Field(
        default=30.0, gt=0, description="One vendor request's timeout."
    )
    vendor_give_up_seconds: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="A vendor unavailable (429, 5xx, timeouts) this long ends the command "
        "`timeout`; until then it is retried with back-off.",
    )
    vendor_backoff_max_seconds: float = Field(
        default=60.0, gt=0, description="Longest back-off between vendor retries."
    )
    vendor_pacing: bool = Field(
        default=True,
        description="Pace requests to the vendors' documented limits (off only to measure "
        "the runtime's own ceiling).",
    )
    vendor_window_scale: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Shrink every vendor limit's window by this factor, keeping its count "
        "(benchmarks only: 300 per 5 minutes at 1/30 is 300 per 10 s).",
    )
    rotation_interval_days: int = Field(
        default=90, ge=1, description="Password rotation interval of enrolled accounts."
    )
    rotation_check_seconds: float = Field(
        default=30.0, gt=0, description="How often each replica looks for rotations due."
    )
    rotation_resend_hours: float = Field(
        default=24.0,
        gt=0,
        description="A rotation request unanswered this long is sent again (same id).",
    )
    welcome_settle_seconds: float = Field(
        default=2.0,
        ge=0,
        description="A welcome email waits this long after its command, for the account's "
        "other commands (the email names what was enabled).",
    )
    welcome_wait_seconds: float = Field(
        default=600.0,
        gt=0,
        description="A welcome email without an address waits this long for the PSA "
        "link's, then fails `no_email`.",
    )
    welcome_check_seconds: float = Field(
        default=1.0, gt=0, description="How often each replica looks at waiting welcome emails."
    )
    smtp_attempt_seconds: float = Field(
        default=60.0,
        gt=0,
        description="One delivery attempt's retries (4xx, no connection); after it the "
        "email waits and is tried again, until VENDOR_GIVE_UP_SECONDS.",
    )
    session_timeout_ms: int = Field(
        default=10_000, ge=1000, description="Consumer group session timeout."
    )
    heartbeat_interval_ms: int = Field(
        default=3_000, ge=100, description="Consumer group heartbeat."
    )
    rebalance_timeout_ms: int = Field(
        default=10_000, ge=1000, description="Consumer group rebalance timeout."
    )
    db_pool_min_size: int = Field(
        default=1, ge=1, description="PostgreSQL pool: connections kept open."
    )
    db_pool_max_size: int = Field(
        default=16, ge=1, description="PostgreSQL pool: most connections at once."
    )
