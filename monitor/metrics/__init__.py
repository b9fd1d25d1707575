"""The Prometheus side: collectors over the daemon's state, the contract figures, exposition."""
