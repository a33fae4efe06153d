"""The way out: the durable outbox and the transports it hands mail to."""
