-- Mailbox administration (issue 10): a mailbox can trust one exact server certificate,
-- named by its SHA-256 fingerprint (64 hex digits, upper case, colon-separated), for
-- self-signed servers. NULL: verify by the system's roots (and the CA file) as before.
ALTER TABLE mailboxes ADD COLUMN trusted_certificate TEXT;
