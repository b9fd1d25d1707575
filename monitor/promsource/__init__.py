"""Contract buckets from a Prometheus that already scrapes a 0/1 success series
(``probe_success`` of blackbox_exporter): the ``prometheus`` target kind, ``slawatch import``
and the daemon's live filler. See docs/prometheus-import.md."""
