-- A [#N] reference from someone the ticket has never heard from (issue 14): ticket
-- numbers are sequential, so anyone can write one. Such mail is marked on its entry,
-- and each mailbox says whether it joins the ticket so marked ('join', the default) or
-- opens a ticket of its own ('new-ticket').
ALTER TABLE ticket_entries ADD COLUMN from_new_address BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN new_address_reference TEXT NOT NULL DEFAULT 'join';
