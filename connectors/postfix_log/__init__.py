"""Postfix mail logs to MailEvents: syslog envelopes, Postfix and spam-filter lines, correlation."""
