"""The support SLA (licence Schedule 1): support-hours clock, faults, deadlines, credits,
maintenance notice rules, and their CLI, HTTP and Alertmanager front ends."""

# monitor.config.model imports monitor.config.support, which imports monitor.config's field
# types: loading the config package first, whichever module is imported first, keeps that
# cycle from meeting a half-initialised monitor.support.config.
import monitor.config  # noqa: F401
