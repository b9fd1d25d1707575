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


_SAMPLE_BYTES = 64
"""The most one sample takes in the API's JSON: ``[1733222400.123,"0.30000000000000004"],``
is 41 bytes (a time in seconds with milliseconds, a value as Go writes a float64)."""

_SAMPLES_PER_SECOND = 10
"""The most samples one second of a series holds in a valid answer: one per scrape, and no
blackbox scrape runs ten times a second (a day's chunk: 864,000 samples, 55 MB)."""

_ANSWER_FIXED = 1 << 20
"""What an answer may hold besides its samples: the envelope, the series' labels, warnings,
an error message, a few more series (a selector naming two is refused, listing them)."""

_READ_SIZE = 1 << 16


def most_answer_bytes(start_ms: int, end_ms: int) -> int:
    """hd34 (issue 20): the most bytes a valid answer for ``[start_ms, end_ms)`` of one series
    can take; a longer one is refused before it is read whole (a hostile or broken server
    cannot make the import or the live filler hold more). The answer is asked for and read
    as it is sent (``Accept-Encoding: identity``): nothing is ever inflated."""
    samples = (max(0, end_ms - start_ms) * _SAMPLES_PER_SECOND + 999) // 1000 + 1
    return _ANSWER_FIXED + samples * _SAMPLE_BYTES


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
            # hd34: the answer is read as sent, never inflated (aiohttp would inflate gzip,
            # deflate or br as it arrives, a whole received chunk at a time).
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.options.timeout),
                auto_decompress=False,
            )
        return self._session

    async def query(self, expr: str, at_ms: int, *, most: int) -> Any:
        """The ``data`` of an instant query evaluated at ``at_ms``; raises PrometheusError,
        also for an answer of more than ``most`` bytes (:func:`most_answer_bytes`) or one
        sent compressed."""
        url = f"{self.options.url}/api/v1/query"
        form = {"query": expr, "time": f"{at_ms // 1000}.{at_ms % 1000:03d}"}
        where = f"prometheus {self.options.url}"
        session = self._open()
        self.queries += 1
        try:
            headers = {**_auth_headers(self.options), "Accept-Encoding": "identity"}
            async with session.post(url, data=form, headers=headers) as reply:
                status = reply.status
                data = await _bounded_body(reply, where, most)
        except TimeoutError:
            raise PrometheusError(
                f"{where}: no answer within {self.options.timeout:g}s (timeout)"
            ) from None
        except aiohttp.ClientError as exc:
            raise PrometheusError(f"{where}: cannot reach it: {_one_line(exc)}") from None
        try:
            body = json.loads(data)
        except ValueError:
            text = data[:80].decode("utf-8", "replace")
            raise PrometheusError(
                f"{where}: HTTP {status}, expected a JSON API answer, got {text!r}"
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
        data = await self.query(expr, end_ms - 1, most=most_answer_bytes(start_ms, end_ms))
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


async def _bounded_body(reply: aiohttp.ClientResponse, where: str, most: int) -> bytes:
    """The body as sent, refused past ``most`` bytes (read no further) or if compressed."""
    coding = reply.headers.get("Content-Encoding", "identity").strip().lower()
    if coding not in ("", "identity"):
        raise PrometheusError(
            f"{where}: HTTP {reply.status}: expected an answer sent as is "
            f"(asked with Accept-Encoding: identity), got Content-Encoding {coding!r}"
        )
    too_long = PrometheusError(
        f"{where}: HTTP {reply.status}: answer longer than {most} bytes, more than the range "
        "asked for can hold (expected one series; a shorter prometheus.chunk asks for less)"
    )
    if reply.content_length is not None and reply.content_length > most:
        raise too_long
    data = bytearray()
    async for piece in reply.content.iter_chunked(_READ_SIZE):
        data += piece
        if len(data) > most:
            raise too_long
    return bytes(data)


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
