"""Settings from the environment or `.env`; built once per entry point and passed down."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.accounts import DashboardAccount, parse_dashboard_users, unique_usernames
from core.addresses import check_address_list, parse_address_list
from core.agents import McpAgent, agents_that_could_approve, parse_mcp_agents, unique_agent_names
from core.codec_keys import CodecKey, parse_codec_keys
from core.models import ApprovalSettings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_POLICY_FILE = PROJECT_ROOT / "manifests" / "policy.yaml"


class ConfigError(Exception):
    """A setting has a bad value; the message names the setting."""


MIN_SIGNING_KEY = 32


class Settings(BaseSettings):
    # An empty value (`SLACK_BOT_TOKEN=` in a .env or a Secret) means unset, not "the empty string".
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True)

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "agent-ticket"
    # On stop, running activities get this long to finish before they are cancelled (and retried elsewhere).
    worker_shutdown_grace_seconds: float = Field(default=30.0, ge=0, le=600)
    temporal_ui_url: str = "http://localhost:8233"
    # Temporal Cloud or a TLS-terminated cluster; see service/temporal_tls.py for how they are used.
    temporal_tls: bool = False
    temporal_tls_cert_path: Path | None = None
    temporal_tls_key_path: Path | None = None
    temporal_tls_ca_path: Path | None = None
    temporal_api_key: SecretStr | None = None
    # Web UI port of the embedded server that `agent-ticket dev` starts.
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535)

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    # Plans started per second on the LLM queue, across every LLM worker (Temporal enforces it on the
    # queue); unset: no limit. Set below the provider's rate limit so a burst queues instead of drawing 429s.
    # At least 0.1/s: a plan waits at most 30 min in the queue, so a lower limit fails any real burst.
    llm_activities_per_second: float | None = Field(default=None, ge=0.1, le=10_000, allow_inf_nan=False)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_escalation_channel: str | None = None

    data_dir: Path = Field(default=Path(".data"), validation_alias="AGENT_TICKET_DATA_DIR")
    app_database_url: str | None = None
    target_database_url: str | None = None
    policy_file: Path = DEFAULT_POLICY_FILE
    seed_demo_data: bool = True

    approvers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    approval_timeout_seconds: int = Field(default=3 * 24 * 3600, ge=60)
    approval_reminder_before_seconds: int = Field(default=24 * 3600, ge=0)

    bot_host: str = "127.0.0.1"
    bot_port: int = Field(default=3000, ge=1, le=65535)
    public_url: str = "http://localhost:3000"
    # Proxies whose X-Forwarded-For/-Proto name the client (addresses or networks, `*`; empty: none),
    # the bot's own /metrics port (off when unset), and how long a client may take to send its headers.
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(default_factory=list)
    bot_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    bot_header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    # The approvals dashboard: accounts (`username:approver_identity:argon2_hash`, comma separated),
    # the key that signs session cookies, their absolute lifetime, and an optional SSO header.
    dashboard_users: Annotated[list[DashboardAccount], NoDecode] = Field(default_factory=list)
    dashboard_session_secret: SecretStr | None = None
    dashboard_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    dashboard_https_only: bool | None = None  # None: secure cookies exactly when PUBLIC_URL is https
    dashboard_trusted_header: str | None = None
    # Who may send that header: the proxies' addresses, or any request carrying this shared secret.
    trusted_proxy_ips: Annotated[list[str], NoDecode] = Field(default_factory=list)
    dashboard_trusted_header_secret: SecretStr | None = None
    # Password checks (argon2, up to 64 MiB each) that may run at once; more wait briefly or get a 503.
    dashboard_login_concurrency: int = Field(default=2, ge=1, le=16)

    # How long an executed change can be undone (docs/undo.md): its before-images are kept, in the
    # target DB, this long, then purged. ISO 8601 (P7D, PT12H) or words ("7 days").
    revert_window: timedelta = Field(default=timedelta(days=7), gt=timedelta(0))

    # Decisions prove who made them (core/decision_proof.py): the front doors sign with the first key
    # (comma separated, current first, so keys can be rotated), the worker accepts any of them.
    # Unsigned decisions, such as a raw `temporal workflow signal`, count only with ALLOW_UNSIGNED_DECISIONS.
    decision_signing_key: SecretStr | None = None
    allow_unsigned_decisions: bool = False

    # The MCP door (mcp_door/): agents (`name:argon2_hash_of_token`, comma separated), the Slack channel
    # their tickets go to (else SLACK_ESCALATION_CHANNEL), the token `agent-ticket mcp` (stdio) runs as,
    # and per-agent limits on tool calls and on tickets filed.
    mcp_agents: Annotated[list[McpAgent], NoDecode] = Field(default_factory=list)
    mcp_channel: str | None = None
    mcp_token: SecretStr | None = None
    mcp_calls_per_minute: int = Field(default=60, ge=1, le=10_000)
    mcp_tickets_per_hour: int = Field(default=20, ge=1, le=10_000)

    # Payload encryption (off when empty): `id:base64key,...`, current key first. See core/codec.py.
    payload_codec_keys: SecretStr | None = None
    # Bearer token the codec endpoint (`/codec/decode`) requires; only holders of the key should have it.
    codec_auth_token: SecretStr | None = None

    # Observability (core/observability/): the Temporal SDK's Prometheus endpoint of this process
    # (off when unset), log lines as JSON or text, and OTLP trace export (off when unset).
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    log_format: Literal["text", "json"] = "text"
    otel_exporter_otlp_endpoint: str | None = None

    @field_validator(
        "temporal_tls_cert_path", "temporal_tls_key_path", "temporal_tls_ca_path", "temporal_api_key", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """`KEY=` in an env file or an empty Secret key means "not set", not "the current directory"."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("temporal_tls_cert_path", "temporal_tls_key_path", "temporal_tls_ca_path")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _client_cert_with_key(self) -> Settings:
        if (self.temporal_tls_cert_path is None) != (self.temporal_tls_key_path is None):
            raise ValueError("TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH must be set together (mTLS)")
        return self

    @field_validator("dashboard_users", mode="before")
    @classmethod
    def _parse_dashboard_users(cls, value: object) -> object:
        return parse_dashboard_users(value)

    @field_validator("dashboard_users")
    @classmethod
    def _unique_dashboard_users(cls, value: list[DashboardAccount]) -> list[DashboardAccount]:
        return unique_usernames(value)

    @field_validator("forwarded_allow_ips", "trusted_proxy_ips", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        return parse_address_list(value)

    @field_validator("forwarded_allow_ips", "trusted_proxy_ips")
    @classmethod
    def _valid_addresses(cls, value: list[str]) -> list[str]:
        return check_address_list(value)

    @model_validator(mode="after")
    def _trusted_header_needs_a_trusted_sender(self) -> Settings:
        if self.dashboard_trusted_header and not (self.trusted_proxy_ips or self.dashboard_trusted_header_secret):
            raise ValueError(
                "DASHBOARD_TRUSTED_HEADER needs TRUSTED_PROXY_IPS or DASHBOARD_TRUSTED_HEADER_SECRET: "
                "otherwise anyone who reaches the bot could name themselves"
            )
        return self

    @field_validator("mcp_agents", mode="before")
    @classmethod
    def _parse_mcp_agents(cls, value: object) -> object:
        return parse_mcp_agents(value)

    @field_validator("mcp_agents")
    @classmethod
    def _unique_mcp_agents(cls, value: list[McpAgent]) -> list[McpAgent]:
        return unique_agent_names(value)

    @model_validator(mode="after")
    def _agents_never_approve(self) -> Settings:
        clashes = agents_that_could_approve(self.mcp_agents, self.approvers)
        if clashes:
            raise ValueError(f"APPROVERS must not name an MCP agent or an `agent:` identity: {', '.join(clashes)}")
        return self

    @field_validator(
        "dashboard_session_secret", "dashboard_trusted_header", "dashboard_trusted_header_secret", mode="before"
    )
    @classmethod
    def _blank_dashboard_setting_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("dashboard_session_secret")
    @classmethod
    def _long_session_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (for example from `openssl rand -hex 32`)")
        return value

    @field_validator("dashboard_trusted_header_secret")
    @classmethod
    def _long_header_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (for example from `openssl rand -hex 32`)")
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_log_format(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("approvers", mode="before")
    @classmethod
    def _split_approvers(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("openai_base_url", "slack_api_url", "otel_exporter_otlp_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("app_database_url", "target_database_url")
    @classmethod
    def _async_driver(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith(("postgresql://", "postgres://")):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must be a sqlite+aiosqlite:// or postgresql+asyncpg:// URL")
        return value

    @field_validator("payload_codec_keys")
    @classmethod
    def _valid_codec_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        parse_codec_keys(value.get_secret_value())
        return value

    @field_validator("decision_signing_key")
    @classmethod
    def _long_signing_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if any(len(key.strip()) < MIN_SIGNING_KEY for key in value.get_secret_value().split(",")):
            raise ValueError(f"each key must be at least {MIN_SIGNING_KEY} characters")
        return value

    @field_validator("codec_auth_token")
    @classmethod
    def _long_codec_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @property
    def codec_keys(self) -> tuple[CodecKey, ...]:
        """The payload encryption keys, current first; empty when encryption is off."""
        if self.payload_codec_keys is None:
            return ()
        return parse_codec_keys(self.payload_codec_keys.get_secret_value())

    @property
    def decision_keys(self) -> list[bytes]:
        """The decision signing keys, current first; empty when none is configured."""
        if self.decision_signing_key is None:
            return []
        return [key.strip().encode() for key in self.decision_signing_key.get_secret_value().split(",")]

    @property
    def signing_key(self) -> bytes | None:
        """The key front doors sign decisions with (the first), or None."""
        return self.decision_keys[0] if self.decision_keys else None

    @property
    def app_db_url(self) -> str:
        return self.app_database_url or f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'app.db'}"

    @property
    def target_db_url(self) -> str:
        return self.target_database_url or f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'target.db'}"

    @property
    def temporal_db_file(self) -> Path:
        return self.data_dir.resolve() / "temporal.db"

    @property
    def llm_enabled(self) -> bool:
        return self.openai_api_key is not None and bool(self.openai_api_key.get_secret_value())

    @property
    def dashboard_secure_cookies(self) -> bool:
        """Session cookies only over HTTPS: as configured, else whenever the public URL is HTTPS."""
        if self.dashboard_https_only is not None:
            return self.dashboard_https_only
        return self.public_url.startswith("https://")

    @property
    def https_public_url(self) -> bool:
        """Browsers reach the bot over HTTPS: secure cookies by default and an HSTS header."""
        return self.public_url.startswith("https://")

    @property
    def tracing_enabled(self) -> bool:
        return self.otel_exporter_otlp_endpoint is not None

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None and self.slack_signing_secret is not None

    def approval_settings(self) -> ApprovalSettings:
        """What a new ticket carries into its workflow, so workflow code reads no settings."""
        return ApprovalSettings(
            approvers=list(self.approvers),
            timeout_seconds=self.approval_timeout_seconds,
            reminder_before_seconds=min(self.approval_reminder_before_seconds, self.approval_timeout_seconds),
            escalation_channel=self.slack_escalation_channel,
        )


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning a validation error into one that names the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = []
        for issue in error.errors():
            field = str(issue["loc"][0]) if issue["loc"] else "settings"
            variable = "AGENT_TICKET_DATA_DIR" if field == "data_dir" else field.upper()
            problems.append(f"{variable}: {issue['msg']}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from error
