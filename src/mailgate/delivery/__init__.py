"""Outbound delivery: talking to upstream SMTP servers.

``transport`` is the only module that speaks SMTP as a client (and the only importer of
aiosmtplib); it turns every library, ``ssl`` and socket error into the ``SmtpError`` tree.
"""
