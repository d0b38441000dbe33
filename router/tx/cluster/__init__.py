"""Cluster mode: several Wampgate nodes sharing events, registrations and counters through Redis (issue 15)."""
