"""Kafka plumbing shared by every confluent-kafka client: settings and the embedded broker."""
