"""The SMTP relay listener: applications hand mail to Mailgate as their smarthost."""
