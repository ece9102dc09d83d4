"""Every reply the relay gives of its own (RFC 5321 codes, RFC 3463 enhanced status codes)."""

from __future__ import annotations

from typing import Final

SENDER_OK: Final = "250 2.1.0 Sender OK"
RECIPIENT_OK: Final = "250 2.1.5 Recipient OK"
QUEUED: Final = "250 2.0.0 OK: queued as {id}"
REPORT_TAKEN: Final = "250 2.0.0 OK: report received"
AUTH_OK: Final = "235 2.7.0 Authentication successful"

BUSY: Final = "421 4.7.0 Too many connections from your address, try again later"
FULL: Final = "421 4.3.2 Too many connections, try again later"
TOO_MANY_MESSAGES: Final = "421 4.7.0 Too many messages on this connection, reconnect"
TOO_MANY_FAILURES: Final = "421 4.7.0 Too many failed logins, goodbye"
NOT_QUEUED: Final = "451 4.3.0 The message could not be queued, try again later"
SENDING_LIMITED: Final = "451 4.7.1 Sending rate limit of this SMTP user reached, try again later"
LOGINS_LIMITED: Final = "454 4.7.0 Too many failed logins from your address, try again later"
TOO_MANY_RECIPIENTS: Final = "452 4.5.3 Too many recipients"
SEPARATE_REPORTS: Final = "452 4.5.3 Send reports and mail in separate transactions"

AUTH_INVALID: Final = "535 5.7.8 Authentication credentials invalid"
AUTH_SYNTAX: Final = "501 5.5.2 Cannot decode the credentials"
AUTH_REQUIRED: Final = "530 5.7.0 Authentication required"
RELAY_DENIED: Final = "550 5.7.1 Relaying denied: authenticate first"
SENDER_REFUSED: Final = "553 5.7.1 This SMTP user may not send as <{address}>"
FROM_REFUSED: Final = "550 5.7.1 This SMTP user may not send as <{address}> (From: header)"
BAD_ADDRESS: Final = "553 5.1.3 Not a valid address: <{address}>"
NEEDS_SMTPUTF8: Final = "553 5.6.7 A non-ASCII address needs the SMTPUTF8 parameter"
TOO_BIG: Final = "552 5.3.4 The message exceeds the size limit of {limit} bytes"
BAD_MESSAGE: Final = "550 5.6.0 The message was refused: {reason}"
