"""Adapters and plumbing shared by both services: settings, logging, Kafka, PostgreSQL."""
