"""The ``prometheus:`` block of a ``kind: prometheus`` target.

Such a target is read, not probed: its probes are the samples of a 0/1 series that a
Prometheus already scrapes (``probe_success`` of blackbox_exporter). Secrets name an
environment variable or a file, like every other probe's (``probes.fields.SecretRef``), so
``slawatch check-config`` and ``slawatch run`` verify them before anything starts.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from probes.fields import Duration, SecretRef
from probes.result import Outcome, ProbeContext, ProbeResult


class PrometheusTls(BaseModel):
    """TLS towards Prometheus: a private CA, a client certificate, or (for tests) no checks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _pair(self) -> PrometheusTls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give both cert_file and key_file for a client certificate")
        return self


class PrometheusOptions(BaseModel):
    """Where the samples are and how to read them.

    ``selector`` is an instant-vector selector yielding ONE 0/1 series for this target, e.g.
    ``probe_success{job="blackbox",instance="https://portal.example/health"}``; ``up`` is the
    exporter's own ``up`` series for the same scrape (a 0 there is a dead exporter: unknown,
    never the vendor's failure). ``scrape_interval`` is inferred from the samples when absent.
    ``lag``: how long after a bucket closes the daemon first asks (a scrape's sample is stamped
    at its start and stored at its end, up to the scrape timeout later); ``retries`` and
    ``retry_every`` bound how long it keeps asking before the bucket stays unknown.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    selector: str
    up: str | None = None
    scrape_interval: Duration | None = None
    username: str | None = None
    password: SecretRef | None = None
    bearer_token: SecretRef | None = None
    tls: PrometheusTls = Field(default_factory=PrometheusTls)
    timeout: Duration = 30.0
    lag: Duration = 15.0
    retries: int = Field(default=5, ge=0, le=100)
    retry_every: Duration = 5.0
    chunk: Duration = 86400.0

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// base URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("selector", "up")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip()
        if not text or "[" in text:
            raise ValueError(
                'expected an instant-vector selector such as probe_success{job="blackbox"} '
                f"(slawatch adds the range itself), got {value!r}"
            )
        return text

    @field_validator("timeout", "retry_every", "chunk")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"expected a positive duration, got {value!r}")
        return value

    @field_validator("chunk")
    @classmethod
    def _whole_seconds(cls, value: float) -> float:
        if value != int(value) or value < 60:
            raise ValueError(f"expected whole seconds, at least 1m, got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_auth(self) -> PrometheusOptions:
        if self.bearer_token is not None and (self.username or self.password):
            raise ValueError("give either username/password or bearer_token, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("basic auth needs both username and password")
        return self


async def not_a_probe(options: PrometheusOptions, context: ProbeContext) -> ProbeResult:
    """The registry's run function for ``prometheus``: it must never be scheduled (the daemon
    leaves these targets out of its schedule and fills them from Prometheus instead). It exists
    so that the registry stays the one list of kinds a configuration may name; a run would be
    counted as a failed probe, so it names the mistake in its reason."""
    return context.result(Outcome.ERROR, "prometheus_targets_are_read_not_probed")
