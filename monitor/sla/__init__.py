"""The availability engine: pure functions from probe tallies and the contract to a month's
uptime, error budget, credit and outages. No clock, file or socket is touched here."""
