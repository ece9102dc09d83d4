"""Domain logic. No HTTP, no SMTP server code: surfaces call these functions."""
