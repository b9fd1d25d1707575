"""What slawatch asks of the host: logging set-up and systemd's notify protocol."""
