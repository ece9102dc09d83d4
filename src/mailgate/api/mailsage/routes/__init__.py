"""MailSage resource routers."""
