"""Adapters to outside systems, one sub-package each (Kafka clients, Postfix, SIEMs)."""
