"""SMTP2GO resource routers, one per endpoint group."""
