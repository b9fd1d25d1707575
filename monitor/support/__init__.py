"""The support SLA (licence Schedule 1): support-hours clock, faults, deadlines, credits,
maintenance notice rules, Alertmanager payloads, and the fault service over the store.

Its ``support:`` configuration section is ``monitor.config.support``; its command line is
``monitor.cli.fault``; its HTTP routes are ``monitor.http.faults``.
"""
