"""The daemon's core: lifecycle, scheduler, live state, flushing. Imports neither aiohttp's web
server nor prometheus_client once the adapters are split off (see docs/architecture.md)."""
