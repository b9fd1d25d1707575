"""The web view: server-rendered pages of the month (overview, SLA month heat-map, support
contract, target), read-only, served on the daemon's port and written by
``slawatch report --format html``.

``view`` holds the :class:`~monitor.web.view.WebSource` protocol (everything the pages read)
and the pure page models; ``render`` turns them into HTML; ``routes`` serves them; ``adapter``
makes the running daemon a ``WebSource``.
"""
