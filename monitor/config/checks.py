"""Rules across sections: unique names, references that resolve, the short-bucket switch.

These run on the raw data rather than on a validated ``Config`` so that a service naming a
missing target is reported in the same run as an unrelated typo elsewhere. Items whose own
fields are malformed are skipped here: the models report those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from monitor.config.errors import Issue, KeyPath, did_you_mean, issue
from monitor.config.fieldtypes import format_duration
from monitor.sla.credits import month_bucket_counts, tier_reachable
from monitor.sla.policy import CreditTier
from probes.fields import parse_duration

if TYPE_CHECKING:
    from monitor.config.model import Config

MIN_BUCKET_SECONDS = 300


def _items(data: dict[str, Any], section: str) -> list[tuple[int, dict[str, Any]]]:
    # A list, not a generator: the rules below walk 10,000-item sections a dozen times
    # (issue 20, cl32).
    items = data.get(section)
    if not isinstance(items, list):
        return []
    return [(index, item) for index, item in enumerate(items) if isinstance(item, dict)]


def _names(data: dict[str, Any], section: str, key: str) -> list[tuple[KeyPath, str]]:
    return [
        ((section, index, key), item[key])
        for index, item in _items(data, section)
        if isinstance(item.get(key), str)
    ]


def _unique(named: list[tuple[KeyPath, str]], what: str) -> list[Issue]:
    issues: list[Issue] = []
    first: dict[str, KeyPath] = {}
    for path, name in named:
        if name in first:
            issues.append(
                issue(path, f"{what} must be unique: already used at {_show(first[name])}", name)
            )
        else:
            first[name] = path
    return issues


def _show(path: KeyPath) -> str:
    section, index = path[0], path[1]
    return f"{section}[{index}]"


def _references(
    data: dict[str, Any], section: str, key: str, known: set[str], what: str
) -> list[Issue]:
    issues: list[Issue] = []
    for index, item in _items(data, section):
        value = item.get(key)
        refs = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for position, ref in refs:
            if not isinstance(ref, str) or ref in known:
                continue
            path: KeyPath = (
                (section, index, key) if position is None else (section, index, key, position)
            )
            choices = ", ".join(sorted(known)) or "(none defined)"
            issues.append(
                issue(path, f"must name a {what}, one of: {choices}{did_you_mean(ref, known)}", ref)
            )
    return issues


def cross_checks(data: Any) -> list[Issue]:
    """Every rule that relates one item to another, on the file's raw data."""
    if not isinstance(data, dict):
        return []
    issues: list[Issue] = []
    if data.get("targets") == []:
        issues.append(issue(("targets",), "must list at least one target", []))
    target_names = _names(data, "targets", "name")
    service_names = _names(data, "services", "name")
    issues += _unique(target_names, "target names")
    issues += _unique(service_names, "service names")
    issues += _unique(_names(data, "slas", "name"), "SLA names")
    issues += _unique(
        _names(data, "exclusions", "id") + _names(data, "recurring_exclusions", "id"),
        "exclusion ids",
    )
    targets = {name for _, name in target_names}
    services = {name for _, name in service_names}
    issues += _references(data, "services", "targets", targets, "target")
    issues += _references(data, "services", "services", services, "service")
    issues += _service_cycles(data)
    issues += _references(data, "slas", "service", services, "service")
    issues += _references(data, "exclusions", "services", services, "service")
    issues += _references(data, "recurring_exclusions", "services", services, "service")
    canaries = {
        item["name"]
        for _, item in _items(data, "targets")
        if item.get("role") == "canary" and isinstance(item.get("name"), str)
    }
    for index, service in _items(data, "services"):
        members = service.get("targets")
        for position, name in enumerate(members if isinstance(members, list) else []):
            if isinstance(name, str) and name in canaries:
                issues.append(
                    issue(
                        ("services", index, "targets", position),
                        "is a canary (it watches the monitor's own network) and cannot be part "
                        "of a service",
                        name,
                    )
                )
    issues += _short_buckets(data)
    issues += _probes_per_bucket(data)
    # Imported here: monitor.config.support itself builds on this package.
    from monitor.config.support import notice_reference_issues

    issues += notice_reference_issues(data)
    return issues


def _service_cycles(data: dict[str, Any]) -> list[Issue]:
    """A service containing itself, directly or through others, has no verdict: one line per
    cycle, naming its services in order."""
    children: dict[str, list[str]] = {}
    where: dict[str, int] = {}
    for index, item in _items(data, "services"):
        name = item.get("name")
        members = item.get("services")
        if isinstance(name, str) and isinstance(members, list):
            children[name] = [m for m in members if isinstance(m, str)]
            where.setdefault(name, index)
    issues: list[Issue] = []
    reported: set[frozenset[str]] = set()
    for start in children:
        path = [start]
        stack = [(start, iter(children.get(start, ())))]
        on_path = {start}
        while stack:
            node, rest = stack[-1]
            child = next(rest, None)
            if child is None:
                stack.pop()
                on_path.discard(node)
                path.pop()
                continue
            if child == start:
                cycle = frozenset(path)
                if cycle not in reported:
                    reported.add(cycle)
                    loop = " -> ".join([*path, start])
                    issues.append(
                        issue(
                            ("services", where[start], "services"),
                            f"services form a cycle ({loop}): a service cannot contain itself",
                            children[start],
                        )
                    )
                continue
            if child in on_path or child not in children:
                continue
            path.append(child)
            on_path.add(child)
            stack.append((child, iter(children[child])))
    return issues


def _seconds(value: Any, default: float) -> float | None:
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError:
        return None


def _probes_per_bucket(data: dict[str, Any]) -> list[Issue]:
    """A target probed less often than its SLAs' buckets need leaves them unknown by design."""
    # Each written duration parsed once: 10,000 targets write the same interval (issue 20).
    parsed: dict[str, float | None] = {}

    def seconds(value: Any, default: float) -> float | None:
        if type(value) is not str:
            return _seconds(value, default)
        found = parsed.get(value, -1.0)
        if found == -1.0:
            found = parsed[value] = _seconds(value, default)
        return found

    members: dict[str, list[str]] = {}
    for _, service in _items(data, "services"):
        if isinstance(service.get("name"), str) and isinstance(service.get("targets"), list):
            members[service["name"]] = [t for t in service["targets"] if isinstance(t, str)]
    needs: dict[str, list[tuple[float, int, str]]] = {}
    for _, sla in _items(data, "slas"):
        bucket = seconds(sla.get("bucket"), 300.0)
        min_probes = sla.get("min_probes", 1)
        name = sla.get("name")
        # Out-of-range values are the model's own problems (min_probes is at most 10,000).
        if bucket is None or not isinstance(min_probes, int) or not 1 <= min_probes <= 10_000:
            continue
        for member in members.get(str(sla.get("service")), []):
            needs.setdefault(member, []).append((bucket, min_probes, str(name)))
    issues: list[Issue] = []
    for index, item in _items(data, "targets"):
        interval = seconds(item.get("interval"), 30.0)
        name = item.get("name")
        if interval is None or interval <= 0 or not isinstance(name, str) or name not in needs:
            continue
        for bucket, min_probes, sla_name in needs[item["name"]]:
            if interval * min_probes > bucket:
                most = format_duration(bucket / min_probes)
                issues.append(
                    issue(
                        ("targets", index, "interval"),
                        f"must let {min_probes} probe(s) fall in each {format_duration(bucket)} "
                        f"bucket of SLA {sla_name} (at most {most})",
                        item.get("interval", "30s"),
                    )
                )
                break
    return issues


def _short_buckets(data: dict[str, Any]) -> list[Issue]:
    monitor = data.get("monitor")
    if isinstance(monitor, dict) and monitor.get("allow_short_buckets") is True:
        return []
    issues: list[Issue] = []
    for index, sla in _items(data, "slas"):
        if "bucket" not in sla:
            continue
        try:
            seconds = parse_duration(sla["bucket"])
        except ValueError:
            continue
        if 0 < seconds < MIN_BUCKET_SECONDS:
            issues.append(
                issue(
                    ("slas", index, "bucket"),
                    "must be at least 5m "
                    "(set monitor.allow_short_buckets: true for demos and tests)",
                    sla["bucket"],
                )
            )
    return issues


def config_warnings(config: Config) -> list[str]:
    """What is valid but probably not what the contract means, one line each.

    A credit tier that no uptime can fall in at the SLA's bucket length (in any month of 28 to
    31 days, with or without a DST day) never pays: with 5-minute buckets one bad bucket in
    8,928 is already 99.9888%, so a band "below 99.999% and at least 99.99%" is empty.
    """
    found: list[str] = []
    for index, sla in enumerate(config.slas):
        counts = month_bucket_counts(sla.bucket_seconds)
        for position, tier_config in enumerate(sla.credit_tiers):
            tier = tier_config.to_tier()
            if tier.credit_percent > 0 and not tier_reachable(tier, counts):
                found.append(
                    f"slas[{index}].credit_tiers[{position}]: no uptime at "
                    f"{format_duration(sla.bucket)} buckets falls in this band "
                    f"({_band(tier)}) in a month of {counts[0]} to {counts[-1]} buckets: "
                    "its credit can never apply; check the band's edges or use shorter buckets"
                )
    return found


def _band(tier: CreditTier) -> str:
    parts = []
    if tier.upper is not None:
        parts.append(f"{'at most' if tier.upper_inclusive else 'below'} {tier.upper}%")
    if tier.lower is not None:
        parts.append(f"{'at least' if tier.lower_inclusive else 'above'} {tier.lower}%")
    return " and ".join(parts) or "any uptime"
