//! What each provider needs: its endpoints, its scopes, and the extra authorize
//! parameters without which it issues no refresh token. I/O-free.

use store::{OAuthFlow, OAuthProvider};

/// Microsoft's POP3 scope for a signed-in user.
pub const MICROSOFT_POP: &str = "https://outlook.office.com/POP.AccessAsUser.All";
/// Microsoft's SMTP scope, once replies are sent from the mailbox.
pub const MICROSOFT_SMTP: &str = "https://outlook.office.com/SMTP.Send";
/// Asks Microsoft for a refresh token.
pub const OFFLINE_ACCESS: &str = "offline_access";
/// App-only access (client credentials) to Exchange Online: the app's granted roles
/// (`POP.AccessAsApp`) come with it.
pub const MICROSOFT_APP: &str = "https://outlook.office365.com/.default";
/// Google's one scope for POP3 and SMTP.
pub const GOOGLE_MAIL: &str = "https://mail.google.com/";

/// A provider's endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub authorize: Option<String>,
    pub token: String,
    pub device: Option<String>,
}

/// The endpoints of a preset provider; None for `generic`, whose endpoints are given or
/// discovered. Microsoft's are per tenant (`organizations` when none is given).
pub fn preset_endpoints(provider: OAuthProvider, tenant: Option<&str>) -> Option<Endpoints> {
    match provider {
        OAuthProvider::Microsoft => {
            let tenant = tenant
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .unwrap_or("organizations");
            let base = format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0");
            Some(Endpoints {
                authorize: Some(format!("{base}/authorize")),
                token: format!("{base}/token"),
                device: Some(format!("{base}/devicecode")),
            })
        }
        // Google's device flow refuses the mail scope (it allows only a short list of
        // scopes), so Gmail connects through the browser.
        OAuthProvider::Google => Some(Endpoints {
            authorize: Some("https://accounts.google.com/o/oauth2/v2/auth".into()),
            token: "https://oauth2.googleapis.com/token".into(),
            device: None,
        }),
        OAuthProvider::Generic => None,
    }
}

/// The scopes a preset asks for: POP3 (and SMTP when replies are sent), plus what makes
/// the provider issue a refresh token. A generic provider gets none: its scopes are the
/// admin's to name.
pub fn default_scopes(provider: OAuthProvider, flow: OAuthFlow, sending: bool) -> Vec<String> {
    let scopes: &[&str] = match (provider, flow) {
        (OAuthProvider::Microsoft, OAuthFlow::ClientCredentials) => &[MICROSOFT_APP],
        (OAuthProvider::Microsoft, _) if sending => {
            &[MICROSOFT_POP, MICROSOFT_SMTP, OFFLINE_ACCESS]
        }
        (OAuthProvider::Microsoft, _) => &[MICROSOFT_POP, OFFLINE_ACCESS],
        (OAuthProvider::Google, _) => &[GOOGLE_MAIL],
        (OAuthProvider::Generic, _) => &[],
    };
    scopes.iter().map(|s| (*s).to_string()).collect()
}

/// Authorize parameters a provider needs beyond the standard ones. Google issues a
/// refresh token only with `access_type=offline`, and a second one (after a reconnect)
/// only when consent is asked again.
pub fn extra_authorize_params(provider: OAuthProvider) -> &'static [(&'static str, &'static str)] {
    match provider {
        OAuthProvider::Google => &[("access_type", "offline"), ("prompt", "consent")],
        OAuthProvider::Microsoft | OAuthProvider::Generic => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsoft_endpoints_are_per_tenant() {
        let e = preset_endpoints(OAuthProvider::Microsoft, Some("contoso.onmicrosoft.com"));
        assert_eq!(
            e.map(|e| e.token),
            Some(
                "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
                    .to_string()
            )
        );
        let e = preset_endpoints(OAuthProvider::Microsoft, Some(" "));
        assert!(e.is_some_and(|e| e.token.contains("/organizations/")));
        assert_eq!(preset_endpoints(OAuthProvider::Generic, None), None);
        let google = preset_endpoints(OAuthProvider::Google, None);
        assert!(
            google.is_some_and(|e| e.device.is_none()),
            "no device flow for Gmail"
        );
    }

    #[test]
    fn microsoft_scopes_follow_the_flow_and_sending() {
        let s = default_scopes(
            OAuthProvider::Microsoft,
            OAuthFlow::AuthorizationCode,
            false,
        );
        assert_eq!(s, [MICROSOFT_POP, OFFLINE_ACCESS]);
        let s = default_scopes(OAuthProvider::Microsoft, OAuthFlow::DeviceCode, true);
        assert_eq!(s, [MICROSOFT_POP, MICROSOFT_SMTP, OFFLINE_ACCESS]);
        let s = default_scopes(OAuthProvider::Microsoft, OAuthFlow::ClientCredentials, true);
        assert_eq!(s, [MICROSOFT_APP]);
        let s = default_scopes(OAuthProvider::Google, OAuthFlow::AuthorizationCode, true);
        assert_eq!(s, [GOOGLE_MAIL]);
    }
}
