"""care-intro: double opt-in introductions by email."""

__version__ = "0.1.0"
