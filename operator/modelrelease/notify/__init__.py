"""Notifications: one file per service formats a message, ``sender`` delivers them."""
