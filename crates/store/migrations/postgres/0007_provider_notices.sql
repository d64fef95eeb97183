-- What the provider does with deleted mail (issue 19): POP3 cannot ask a server whether
-- it really deletes, but the fetcher can notice what the server does — mail it deleted
-- listed again under the same UIDL, mail it stored offered again under new UIDLs, no
-- UIDL, one UIDL on several messages — and tell the admin. Information, not an error:
-- a row stops nothing. One row per mailbox and behaviour, removed when the behaviour
-- stops. Timestamps are integer milliseconds since the Unix epoch.

CREATE TABLE provider_notices (
    mailbox_id    BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    -- kept_after_delete | reoffered_under_new_uidl | no_uidl | duplicate_uidls
    kind          TEXT    NOT NULL,
    first_seen_at BIGINT  NOT NULL,
    last_seen_at  BIGINT  NOT NULL,
    -- messages showing it in the last run that saw it (e.g. kept on the server now)
    last_count    BIGINT  NOT NULL,
    -- messages showing it over every run since first_seen_at (re-offered in all)
    total         BIGINT  NOT NULL,
    PRIMARY KEY (mailbox_id, kind)
);
