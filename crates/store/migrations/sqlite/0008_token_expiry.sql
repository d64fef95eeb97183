-- API tokens may expire (issue 14): the moment, in integer milliseconds since the Unix
-- epoch, after which the token no longer works; NULL for a token that does not expire.
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
