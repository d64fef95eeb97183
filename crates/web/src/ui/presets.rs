//! Provider presets for a new mailbox: what to fill in, and what the provider's POP3
//! and SMTP do that an admin would not guess (DESIGN.md, "What POP3 gives us" and
//! "Answering the customer").

/// A provider's settings and the sentences that explain its POP3.
#[derive(Debug)]
pub(crate) struct Preset {
    /// The `?preset=` value.
    pub key: &'static str,
    /// The button's text.
    pub label: &'static str,
    pub host: &'static str,
    pub port: u16,
    /// `implicit`, `starttls` or `none`.
    pub tls: &'static str,
    /// The sign-in method to start with.
    pub auth_method: &'static str,
    /// What goes in "Username".
    pub username_hint: &'static str,
    /// A sentence or two per paragraph.
    pub about: &'static [&'static str],
    /// Where replies leave: the provider's SMTP server, port, `implicit`/`starttls`,
    /// and the sign-in method (`auto`, `xoauth2`, ...).
    pub smtp_host: &'static str,
    pub smtp_port: u16,
    pub smtp_tls: &'static str,
    pub smtp_auth: &'static str,
    /// What the admin must know about sending through it.
    pub sending_about: &'static [&'static str],
    /// The OAuth2 provider preselected on the form (`none`: a password).
    pub oauth_provider: &'static str,
}

pub(crate) const GMAIL: Preset = Preset {
    key: "gmail",
    label: "Gmail",
    host: "pop.gmail.com",
    port: 995,
    tls: "implicit",
    auth_method: "auto",
    username_hint: "The full address, e.g. support@example.com; prefix it with recent: for recent mode.",
    about: &[
        "What Gmail does after popdesk downloads and deletes a message depends on the \
         account's setting “When messages are accessed with POP” (Gmail settings, \
         Forwarding and POP/IMAP): keep Gmail's copy in the inbox, mark it as read, archive \
         it, or delete it. So mail may stay in Gmail; popdesk still fetches it only once, \
         and popdesk will tell you if Gmail keeps copies (on the mailbox's page, with how \
         many).",
        "Recent mode (the username prefixed with recent:) shows the last 30 days of mail \
         again, including mail read elsewhere; popdesk recognises what it already has, \
         stores it once, and tells you when mail came back.",
        "Gmail does not take the account's normal password. Sign in with OAuth2 (below: \
         the Google Cloud app's client id and secret; after saving, press Connect on the \
         mailbox page and sign in at Google), or choose OAuth2 provider “None” and use an \
         app password (it needs 2-step verification on the Google account).",
    ],
    smtp_host: "smtp.gmail.com",
    smtp_port: 465,
    smtp_tls: "implicit",
    smtp_auth: "auto",
    sending_about: &[
        "Gmail sends through smtp.gmail.com with the same app password (or OAuth2 token) \
         as POP3, so leave the SMTP username blank. Gmail keeps a copy of every reply in \
         Sent Mail and may serve it over POP3 again; popdesk knows its own mail and keeps \
         it off the ticket list.",
    ],
    oauth_provider: "google",
};

pub(crate) const MICROSOFT_365: Preset = Preset {
    key: "microsoft365",
    label: "Microsoft 365",
    host: "outlook.office365.com",
    port: 995,
    tls: "implicit",
    auth_method: "xoauth2",
    username_hint: "The mailbox's address, e.g. support@example.com.",
    about: &[
        "Microsoft has turned basic authentication (a password) off for POP3 in Microsoft \
         365, so popdesk signs in with OAuth2: give the tenant and the client id of the app \
         registered in Entra ID below, save, then press Connect on the mailbox page and \
         sign in at Microsoft. popdesk renews the token by itself from then on (scope \
         https://outlook.office.com/POP.AccessAsUser.All offline_access).",
        "POP must also be enabled for the mailbox by your Microsoft 365 admin (Exchange \
         admin center: the mailbox's email apps).",
        "Microsoft 365 deletes what popdesk deletes; popdesk will tell you if messages stay \
         on the server or come back (a retention policy or hold on the mailbox).",
    ],
    smtp_host: "smtp.office365.com",
    smtp_port: 587,
    smtp_tls: "starttls",
    smtp_auth: "xoauth2",
    sending_about: &[
        "Microsoft 365 takes mail on smtp.office365.com, port 587 with STARTTLS, and only \
         when SMTP AUTH is enabled for the mailbox: your Microsoft 365 admin turns on \
         “Authenticated SMTP” in the mailbox's email apps (it is off by default in many \
         tenants). With replies on, popdesk asks for the scope \
         https://outlook.office.com/SMTP.Send too.",
    ],
    oauth_provider: "microsoft",
};

pub(crate) const GENERIC: Preset = Preset {
    key: "generic",
    label: "Other POP3 server",
    host: "",
    port: 995,
    tls: "implicit",
    auth_method: "auto",
    username_hint: "As your provider gives it, often the full address.",
    about: &[
        "Most servers offer POP3 with TLS from the start on port 995, or STARTTLS on port \
         110; choose what your provider documents. popdesk refuses to send a password over \
         an unencrypted connection unless you allow it below.",
        "Deleting mail after fetching needs nothing special. Keeping it on the server needs \
         a server with UIDL, so popdesk can tell messages apart between sessions; “Test \
         connection” shows whether it has it. For a server with a self-signed certificate, \
         give the CA certificate file.",
        "popdesk will tell you if the server keeps mail after deleting it, shows it again \
         under new UIDLs, has no UIDL, or gives two messages one UIDL.",
    ],
    smtp_host: "",
    smtp_port: 587,
    smtp_tls: "starttls",
    smtp_auth: "auto",
    sending_about: &[
        "Replies go out through your provider's SMTP server: usually port 587 with \
         STARTTLS, or 465 with TLS from the start. By default popdesk signs in with the \
         POP3 username and password; give SMTP a username of its own where the provider \
         wants another one.",
    ],
    oauth_provider: "none",
};

/// Every preset, in the order the choice shows them.
pub(crate) const ALL: [&Preset; 3] = [&GMAIL, &MICROSOFT_365, &GENERIC];

/// The preset with this `?preset=` value.
pub(crate) fn find(key: &str) -> Option<&'static Preset> {
    ALL.into_iter().find(|preset| preset.key == key)
}

/// The preset whose POP3 server this is, for the SMTP defaults of a stored mailbox
/// that does not send yet; the generic one for any other server.
pub(crate) fn for_pop3_host(host: &str) -> &'static Preset {
    ALL.into_iter()
        .find(|preset| !preset.host.is_empty() && preset.host.eq_ignore_ascii_case(host.trim()))
        .unwrap_or(&GENERIC)
}
