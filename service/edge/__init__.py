"""The process and its surfaces: serve, command line, SMTP listener, pages, jobs; wiring only."""
