"""Decisions over the store: the CARE gate, the workflow that alone moves a referral, deadlines."""
