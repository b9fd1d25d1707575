"""A small Prometheus HTTP API client: raw samples of one series over a half-open range.

Only ``POST /api/v1/query`` with a range selector is used: it returns the stored samples
themselves, with no step, lookback or 11,000-point limit (that limit is ``query_range``'s).
Form bodies (not URLs) carry the query, so long selectors never hit a URL-length limit.
Every failure becomes :class:`PrometheusError` with a one-line message naming the server.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp

from monitor.promsource.bucketing import Sample
from monitor.promsource.options import PrometheusOptions
from probes.fields import SecretUnavailable


class PrometheusError(Exception):
    """Prometheus could not be asked or refused the question; the message is one line."""


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and samples ((ms, value), ascending)."""

    labels: dict[str, str]
    samples: list[Sample]


def _ssl_context(options: PrometheusOptions) -> ssl.SSLContext | bool:
    tls = options.tls
    if not options.url.startswith("https://"):
        return True
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.cert_file is not None and tls.key_file is not None:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _auth_headers(options: PrometheusOptions) -> dict[str, str]:
    try:
        if options.bearer_token is not None:
            return {"Authorization": f"Bearer {options.bearer_token.read()}"}
        if options.username is not None and options.password is not None:
            pair = f"{options.username}:{options.password.read()}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    except SecretUnavailable as exc:
        raise PrometheusError(f"prometheus {options.url}: {exc}") from None
    return {}


def _value(text: str) -> float:
    # Prometheus writes NaN and infinities as "NaN", "+Inf", "-Inf"; float() reads them all.
    return float(text)


class PrometheusClient:
    """Asks one Prometheus; counts the queries it issues (the load figure the bench prints)."""

    def __init__(self, options: PrometheusOptions) -> None:
        self.options = options
        self.queries = 0
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            try:
                connector = aiohttp.TCPConnector(ssl=_ssl_context(self.options), limit=4)
            except (OSError, ssl.SSLError) as exc:
                raise PrometheusError(f"prometheus {self.options.url}: TLS setup: {exc}") from None
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.options.timeout),
            )
        return self._session

    async def query(self, expr: str, at_ms: int) -> Any:
        """The ``data`` of an instant query evaluated at ``at_ms``; raises PrometheusError."""
        url = f"{self.options.url}/api/v1/query"
        form = {"query": expr, "time": f"{at_ms // 1000}.{at_ms % 1000:03d}"}
        where = f"prometheus {self.options.url}"
        session = self._open()
        self.queries += 1
        try:
            async with session.post(url, data=form, headers=_auth_headers(self.options)) as reply:
                text = await reply.text()
                status = reply.status
        except TimeoutError:
            raise PrometheusError(
                f"{where}: no answer within {self.options.timeout:g}s (timeout)"
            ) from None
        except aiohttp.ClientError as exc:
            raise PrometheusError(f"{where}: cannot reach it: {_one_line(exc)}") from None
        try:
            body = json.loads(text)
        except ValueError:
            raise PrometheusError(
                f"{where}: HTTP {status}, expected a JSON API answer, got {text[:80]!r}"
            ) from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error", "") if isinstance(body, dict) else ""
            kind = body.get("errorType", "") if isinstance(body, dict) else ""
            raise PrometheusError(f"{where}: HTTP {status}: {kind}: {_one_line(error)}")
        return body.get("data")

    async def raw_samples(self, selector: str, start_ms: int, end_ms: int) -> list[Series]:
        """Every stored sample of ``selector`` with ``start_ms <= ts < end_ms``.

        Evaluated at ``end_ms - 1`` over ``end_ms - start_ms`` milliseconds: Prometheus 2.x
        returns [start - 1, end - 1] (closed), 3.x (start - 1, end - 1]; the sample at
        ``start - 1`` that 2.x adds is dropped here, so both give exactly [start, end).
        """
        if end_ms <= start_ms:
            return []
        expr = f"{selector}[{end_ms - start_ms}ms]"
        data = await self.query(expr, end_ms - 1)
        where = f"prometheus {self.options.url}"
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            got = data.get("resultType") if isinstance(data, dict) else type(data).__name__
            raise PrometheusError(f"{where}: {expr}: expected a matrix, got {got}")
        out: list[Series] = []
        for item in data.get("result", []):
            samples: list[Sample] = []
            for ts, text in item.get("values", []):
                ms = round(float(ts) * 1000)
                if start_ms <= ms < end_ms:
                    samples.append((ms, _value(text)))
            out.append(Series(dict(item.get("metric", {})), samples))
        return out


def one_series(series: Sequence[Series], selector: str, target: str) -> list[Sample]:
    """The samples of the one series a target's selector must yield (none: no samples)."""
    if len(series) > 1:
        shown = "; ".join(_labels(s.labels) for s in series[:3])
        raise PrometheusError(
            f"target {target}: selector {selector} yields {len(series)} series ({shown}), "
            "expected one: add labels until it matches exactly one"
        )
    return series[0].samples if series else []


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _one_line(value: object) -> str:
    text = str(value) or type(value).__name__
    return " ".join(text.split())
