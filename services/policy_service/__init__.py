"""The policy service: import policies and customers over HTTP, events via an outbox."""
