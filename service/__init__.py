"""care-intro: double opt-in introductions by email."""
