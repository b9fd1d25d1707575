"""The daemon's HTTP interface: the route table, the exclusions/claims/report routes and the
support fault routes."""
