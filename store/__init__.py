"""The store: one deferred database, its tables, and the named queries the service uses."""
