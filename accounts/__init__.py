"""People: the user model with its per-user preferences, and allauth's adapter."""
