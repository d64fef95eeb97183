//! A real OAuth2/OpenID provider (npm `oidc-provider`) on loopback for OAuth2 tests.
//!
//! popdesk's OAuth2 code must survive what real providers do: refresh tokens that rotate
//! and die when reused, device codes that stay pending until someone approves them,
//! authorization codes that work once, PKCE enforced, access tokens that expire while a
//! fetch is running. A hand-written token endpoint would only do what its author thought
//! of, so this runs `oidc-provider` (`oidc/server.mjs`) as a child process and scripts its
//! own login pages over HTTP. Its access tokens are opaque and carry the POP3 user in a
//! `username` claim, so a private [`Dovecot`](crate::Dovecot) started with
//! `.oauth2(provider.introspection_url_for_dovecot())` checks them against the provider.
//!
//! Node.js and the provider's packages must be installed (`scripts/install-test-deps`
//! runs `npm ci` in `crates/testkit/oidc`).

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};
use rustix::process::{Pid, Signal, kill_process_group};
use tempfile::TempDir;

use crate::dovecot::{read_lossy, write_file};

/// How long the provider may take to answer its discovery document (Node starts in
/// about a second; more on a loaded machine).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects and form posts one scripted login may take; the real flows need four to six.
const MAX_STEPS: usize = 16;
/// The client Dovecot authenticates as when it introspects tokens; always registered.
const INTROSPECTOR_ID: &str = "testkit-dovecot";
/// URL-safe, because it travels in the userinfo of Dovecot's `introspection_url`.
const INTROSPECTOR_SECRET: &str = "testkit-dovecot-introspection-secret";
/// The password typed into devInteractions' login form, which accepts any.
const ANY_PASSWORD: &str = "testkit";

/// The device-code grant's registered name.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// One client registered at the provider.
#[derive(Clone, Debug, Default)]
pub struct OidcClient {
    /// `client_id`.
    pub id: String,
    /// `client_secret` for a confidential client; `None` for a public one (PKCE, device).
    pub secret: Option<String>,
    /// Where authorization codes may be sent, e.g. `http://127.0.0.1:PORT/oauth/callback`.
    pub redirect_uris: Vec<String>,
    /// e.g. `["authorization_code", "refresh_token", DEVICE_CODE_GRANT, "client_credentials"]`.
    pub grant_types: Vec<String>,
    /// For client-credentials tokens: the POP3 user name the token's introspection answer
    /// carries (tokens of a signed-in user carry the account name instead).
    pub mailbox_user: Option<String>,
    /// `token_endpoint_auth_method`; `None` means `client_secret_basic` with a secret and
    /// `none` without. oidc-provider 9 takes a secret in the form (`client_secret_post`)
    /// or the Authorization header (`client_secret_basic`) from a client registered with
    /// either, so this matters only for the other methods.
    pub auth_method: Option<String>,
}

impl OidcClient {
    /// A public client (no secret, `token_endpoint_auth_method = none`) allowed the code,
    /// refresh and device grants, as a desktop or CLI app is.
    pub fn public(id: &str) -> OidcClient {
        OidcClient {
            id: id.to_owned(),
            grant_types: ["authorization_code", "refresh_token", DEVICE_CODE_GRANT]
                .map(String::from)
                .to_vec(),
            ..OidcClient::default()
        }
    }

    /// A confidential client (secret in the Authorization header or the form) allowed
    /// every grant, client credentials included.
    pub fn confidential(id: &str, secret: &str) -> OidcClient {
        OidcClient {
            id: id.to_owned(),
            secret: Some(secret.to_owned()),
            grant_types: [
                "authorization_code",
                "refresh_token",
                DEVICE_CODE_GRANT,
                "client_credentials",
            ]
            .map(String::from)
            .to_vec(),
            ..OidcClient::default()
        }
    }

    /// Adds a redirect URI.
    pub fn redirect_uri(mut self, uri: &str) -> OidcClient {
        self.redirect_uris.push(uri.to_owned());
        self
    }

    /// Replaces the allowed grant types.
    pub fn grant_types(mut self, grants: &[&str]) -> OidcClient {
        self.grant_types = grants.iter().map(|g| (*g).to_owned()).collect();
        self
    }

    /// Sets the POP3 user of this client's client-credentials tokens.
    pub fn mailbox_user(mut self, user: &str) -> OidcClient {
        self.mailbox_user = Some(user.to_owned());
        self
    }

    /// Sets `token_endpoint_auth_method`, e.g. `client_secret_post`.
    pub fn auth_method(mut self, method: &str) -> OidcClient {
        self.auth_method = Some(method.to_owned());
        self
    }

    fn to_json(&self) -> serde_json::Value {
        let method = self.auth_method.clone().unwrap_or_else(|| {
            if self.secret.is_some() {
                "client_secret_basic".to_owned()
            } else {
                "none".to_owned()
            }
        });
        serde_json::json!({
            "client_id": self.id,
            "client_secret": self.secret,
            "redirect_uris": self.redirect_uris,
            "grant_types": self.grant_types,
            "token_endpoint_auth_method": method,
            "mailbox_user": self.mailbox_user,
        })
    }
}

/// What the provider is started with.
#[derive(Clone, Debug)]
pub struct OidcConfig {
    /// Lifetime of access tokens (user and client-credentials), 20 s by default: short
    /// enough that a test can watch one expire, long enough for a login.
    pub access_token_ttl_secs: u64,
    /// The clients besides the introspecting one the fixture always adds.
    pub clients: Vec<OidcClient>,
    /// Mail scopes accepted on top of the built-in ones (`mail`, `pop`, Microsoft's
    /// `https://outlook.office.com/POP.AccessAsUser.All`, Google's
    /// `https://mail.google.com/`) and of any a request names.
    pub scopes: Vec<String>,
}

impl Default for OidcConfig {
    fn default() -> OidcConfig {
        OidcConfig {
            access_token_ttl_secs: 20,
            clients: Vec::new(),
            scopes: Vec::new(),
        }
    }
}

impl OidcConfig {
    /// Adds a client.
    pub fn client(mut self, client: OidcClient) -> OidcConfig {
        self.clients.push(client);
        self
    }
}

/// One answer of the token endpoint, in the order they happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenEvent {
    /// e.g. `refresh_token`; empty if the request had none.
    pub grant_type: String,
    /// `ok`, or the OAuth error code, e.g. `invalid_grant`, `authorization_pending`.
    pub outcome: String,
    /// The authenticated (or named public) client, when the request got that far.
    pub client_id: Option<String>,
}

impl TokenEvent {
    /// One line of server.mjs's event file.
    fn parse(line: &str) -> Option<TokenEvent> {
        let event: serde_json::Value = serde_json::from_str(line).ok()?;
        Some(TokenEvent {
            grant_type: event["grant_type"].as_str().unwrap_or_default().to_owned(),
            outcome: event["outcome"].as_str()?.to_owned(),
            client_id: event["client_id"].as_str().map(str::to_owned),
        })
    }
}

/// A running `oidc-provider` on `127.0.0.1`, killed (with its process group) on drop.
///
/// Issuer `http://127.0.0.1:PORT`; endpoints at oidc-provider's default paths. Accounts
/// need no set-up: any name signs in. Consent is given automatically for whatever a
/// request asks, so scripted logins are only the login form (and the code confirmation
/// of the device flow). Access tokens are opaque, for the resource `urn:popdesk:mail`,
/// and introspect with `username` = the account (or a client's
/// [`mailbox_user`](OidcClient::mailbox_user)). Refresh tokens are issued to every client
/// allowed the `refresh_token` grant, rotate on every use, and reusing a rotated one
/// revokes the grant. PKCE (S256) is required for the code flow.
pub struct OidcProvider {
    child: Child,
    dir: TempDir,
    port: u16,
}

impl OidcProvider {
    /// Starts the provider on a free loopback port (the kernel's choice, so no other
    /// process can hold it) and waits until its discovery document answers.
    ///
    /// Blocks the calling thread for the startup (about a second); fine in an async test.
    ///
    /// # Panics
    /// If Node.js or the npm packages are missing (run `scripts/install-test-deps`), or the
    /// provider does not come up within 30 s; the message includes its log.
    pub fn start(config: OidcConfig) -> OidcProvider {
        let program_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc");
        assert!(
            program_dir
                .join("node_modules/oidc-provider/package.json")
                .is_file(),
            "testkit: the OAuth2 provider's npm packages are not installed in {}; run \
             scripts/install-test-deps (it runs `npm ci` there)",
            program_dir.display()
        );
        let node = find_node();

        let dir = tempfile::Builder::new()
            .prefix("popdesk-oidc-")
            .tempdir()
            .expect("testkit: create a temp dir for the OAuth2 provider");
        let mut clients: Vec<serde_json::Value> =
            config.clients.iter().map(OidcClient::to_json).collect();
        clients.push(
            OidcClient::confidential(INTROSPECTOR_ID, INTROSPECTOR_SECRET)
                .grant_types(&[])
                .to_json(),
        );
        let settings = serde_json::json!({
            "access_token_ttl_secs": config.access_token_ttl_secs,
            "clients": clients,
            "scopes": config.scopes,
            "events_file": dir.path().join("events.jsonl"),
            "ready_file": dir.path().join("ready"),
        });
        let config_path = dir.path().join("config.json");
        write_file(&config_path, &settings.to_string(), 0o600);

        let log = fs::File::create(dir.path().join("provider.log"))
            .expect("testkit: create the OAuth2 provider's log file");
        let log_err = log.try_clone().expect("testkit: clone the log file");
        let child = Command::new(&node)
            .arg(program_dir.join("server.mjs"))
            .arg(&config_path)
            .current_dir(&program_dir)
            // Its own process group, so that drop kills whatever Node started too.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("testkit: spawn {} server.mjs: {e}", node.display()));

        let mut provider = OidcProvider {
            child,
            dir,
            port: 0,
        };
        provider.wait_ready();
        provider
    }

    /// `http://127.0.0.1:PORT`, the `iss` of everything it issues.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The authorization endpoint.
    pub fn authorize_url(&self) -> String {
        format!("{}/auth", self.issuer())
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer())
    }

    /// The device authorization endpoint (RFC 8628).
    pub fn device_url(&self) -> String {
        format!("{}/device/auth", self.issuer())
    }

    /// Where a person enters a device flow's user code.
    pub fn device_verification_url(&self) -> String {
        format!("{}/device", self.issuer())
    }

    /// The token revocation endpoint (RFC 7009).
    pub fn revocation_url(&self) -> String {
        format!("{}/token/revocation", self.issuer())
    }

    /// The introspection endpoint (RFC 7662); callers authenticate as a client.
    pub fn introspection_url(&self) -> String {
        format!("{}/token/introspection", self.issuer())
    }

    /// The introspection endpoint with the fixture's own introspecting client in the
    /// userinfo, for [`DovecotBuilder::oauth2`](crate::DovecotBuilder::oauth2): Dovecot
    /// sends it as HTTP Basic auth.
    pub fn introspection_url_for_dovecot(&self) -> String {
        format!(
            "http://{INTROSPECTOR_ID}:{INTROSPECTOR_SECRET}@127.0.0.1:{}/token/introspection",
            self.port
        )
    }

    /// Approves a device flow as a person would in a browser: opens the verification
    /// page, enters and confirms `user_code`, signs in as `account`. Afterwards the
    /// device-code poll gets tokens for `account`.
    ///
    /// # Errors
    /// A sentence naming the step that went wrong, with the page's status and start.
    pub async fn approve_device(&self, user_code: &str, account: &str) -> Result<(), String> {
        let mut browser = Browser::new(self.issuer())?;
        let page = browser.get(&self.device_verification_url()).await?;
        let xsrf = hidden_input(&page.body, "xsrf")
            .ok_or_else(|| format!("no xsrf field on the device page: {}", page.excerpt()))?;
        let form = [("xsrf", xsrf.as_str()), ("user_code", user_code)];
        let page = browser.post(&self.device_verification_url(), &form).await?;
        if !page.body.contains("op.deviceConfirmForm") {
            return Err(format!(
                "user code {user_code} was not accepted: {}",
                page.excerpt()
            ));
        }
        let confirm = [
            ("xsrf", xsrf.as_str()),
            ("user_code", user_code),
            ("confirm", "yes"),
        ];
        let page = browser
            .post(&self.device_verification_url(), &confirm)
            .await?;
        match browser.sign_in(page, account).await? {
            Finish::Page(page) if page.body.contains("testkit-device-approved") => Ok(()),
            Finish::Page(page) => Err(format!(
                "the device approval did not succeed: {}",
                page.excerpt()
            )),
            Finish::Left(location) => {
                Err(format!("the device approval redirected away to {location}"))
            }
        }
    }

    /// Follows `authorize_url` (built by the code under test) through the login as
    /// `account` and returns the final redirect's `Location`: the client's redirect URI
    /// with `code` and `state` (or `error`), without requesting it.
    ///
    /// # Errors
    /// If the provider shows an error page instead of redirecting back.
    pub async fn authorize(&self, authorize_url: &str, account: &str) -> Result<String, String> {
        let mut browser = Browser::new(self.issuer())?;
        let page = browser.get(authorize_url).await?;
        match browser.sign_in(page, account).await? {
            Finish::Left(location) => Ok(location),
            Finish::Page(page) => Err(format!(
                "the authorization ended on a page instead of a redirect: {}",
                page.excerpt()
            )),
        }
    }

    /// Revokes every grant of `account` and everything issued under them, as a user
    /// removing the app's access at the provider does: its refresh tokens then get
    /// `invalid_grant` and its access tokens introspect as inactive. Returns how many
    /// grants there were.
    ///
    /// # Errors
    /// If the provider's admin route does not answer.
    pub async fn revoke_grants(&self, account: &str) -> Result<usize, String> {
        let http = http_client()?;
        let url = reqwest::Url::parse_with_params(
            &format!("{}/_testkit/revoke-grants", self.issuer()),
            [("account", account)],
        )
        .map_err(|e| format!("revoke grants of {account}: {e}"))?;
        let response = http
            .post(url)
            .send()
            .await
            .map_err(|e| format!("revoke grants of {account}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "revoke grants of {account}: HTTP {}",
                response.status()
            ));
        }
        let answer: serde_json::Value = response
            .json()
            .await
            .map_err(|e| format!("revoke grants of {account}: {e}"))?;
        answer["revoked"]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| format!("revoke grants of {account}: unexpected answer {answer}"))
    }

    /// Every answer of the token endpoint so far, oldest first.
    ///
    /// # Panics
    /// If a line of the provider's event file is not the JSON it writes.
    pub fn token_events(&self) -> Vec<TokenEvent> {
        let text = fs::read_to_string(self.dir.path().join("events.jsonl")).unwrap_or_default();
        text.lines()
            .map(|line| {
                TokenEvent::parse(line)
                    .unwrap_or_else(|| panic!("testkit: a token event that is not ours: {line:?}"))
            })
            .collect()
    }

    /// Everything the provider printed (warnings, errors, revocations).
    pub fn log(&self) -> String {
        read_lossy(&self.dir.path().join("provider.log"))
    }

    /// The Node process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for server.mjs to write its port, then for the discovery document.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let ready = self.dir.path().join("ready");
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "testkit: the OAuth2 provider exited with {status}\n--- log ---\n{}",
                    self.log()
                );
            }
            if self.port == 0 {
                self.port = fs::read_to_string(&ready)
                    .ok()
                    .and_then(|p| p.trim().parse().ok())
                    .unwrap_or(0);
            }
            if self.port != 0 && discovery_answers(self.port) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "testkit: the OAuth2 provider did not answer within {STARTUP_TIMEOUT:?}\n\
                     --- log ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if let Some(group) = Pid::from_raw(self.child.id().try_into().unwrap_or(0)) {
            let _ = kill_process_group(group, Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `GET /.well-known/openid-configuration` answers 200. A raw HTTP/1.0 request,
/// because `start` is synchronous and reqwest's blocking client is not built.
fn discovery_answers(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request =
        format!("GET /.well-known/openid-configuration HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    let mut status = [0u8; 12];
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut status).is_ok()
        && status.ends_with(b" 200")
}

fn find_node() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("node"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("testkit: Node.js is not installed (no `node` in PATH); run scripts/install-test-deps")
        })
}

/// A client that never follows redirects: the scripted flows look at each one, and the
/// last redirect of a code flow (to the client) must not be requested.
fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| format!("build an HTTP client: {e}"))
}

/// How a scripted sign-in ended.
enum Finish {
    /// A redirect away from the provider (to the client's redirect URI).
    Left(String),
    /// A page that is neither a redirect nor a form the script knows.
    Page(Page),
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Page {
    fn excerpt(&self) -> String {
        let body: String = self.body.chars().take(600).collect();
        format!("HTTP {}: {body}", self.status)
    }
}

/// Just enough of a browser for oidc-provider's devInteractions pages: redirects are
/// followed one by one, and cookies are kept by name and path (the interaction cookies
/// are scoped to `/interaction/UID`, `/auth/UID` or `/device/UID`).
struct Browser {
    http: reqwest::Client,
    issuer: String,
    cookies: Vec<Cookie>,
}

struct Cookie {
    name: String,
    path: String,
    value: String,
}

impl Browser {
    fn new(issuer: String) -> Result<Browser, String> {
        Ok(Browser {
            http: http_client()?,
            issuer,
            cookies: Vec::new(),
        })
    }

    async fn get(&mut self, url: &str) -> Result<Page, String> {
        let request = self.http.get(url);
        let request = self.with_cookies(request, url);
        let response = request
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        self.read(response).await
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Result<Page, String> {
        let request = self.http.post(url).form(form);
        let request = self.with_cookies(request, url);
        let response = request
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        self.read(response).await
    }

    /// Walks from `page` through redirects, the login form (as `account`) and, should
    /// one appear, the consent form, until a redirect leaves the provider or a page
    /// without such a form is shown.
    async fn sign_in(&mut self, mut page: Page, account: &str) -> Result<Finish, String> {
        for _ in 0..MAX_STEPS {
            if let Some(location) = page.location.take() {
                let url = self.absolute(&location);
                if !url.starts_with(&format!("{}/", self.issuer)) {
                    return Ok(Finish::Left(url));
                }
                page = self.get(&url).await?;
                continue;
            }
            if !page.status.is_success() {
                return Err(format!("the provider answered {}", page.excerpt()));
            }
            let prompt = hidden_input(&page.body, "prompt");
            let action = form_action(&page.body);
            page = match (prompt.as_deref(), action) {
                (Some("login"), Some(action)) => {
                    let form = [
                        ("prompt", "login"),
                        ("login", account),
                        ("password", ANY_PASSWORD),
                    ];
                    self.post(&self.absolute(&action), &form).await?
                }
                (Some("consent"), Some(action)) => {
                    self.post(&self.absolute(&action), &[("prompt", "consent")])
                        .await?
                }
                _ => return Ok(Finish::Page(page)),
            };
        }
        Err(format!(
            "no end after {MAX_STEPS} steps: {}",
            page.excerpt()
        ))
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with('/') {
            format!("{}{location}", self.issuer)
        } else {
            location.to_owned()
        }
    }

    fn with_cookies(&self, request: reqwest::RequestBuilder, url: &str) -> reqwest::RequestBuilder {
        let path = url_path(url);
        let header: Vec<String> = self
            .cookies
            .iter()
            .filter(|c| path_matches(&c.path, path))
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        if header.is_empty() {
            request
        } else {
            request.header(COOKIE, header.join("; "))
        }
    }

    async fn read(&mut self, response: Response) -> Result<Page, String> {
        for value in response.headers().get_all(SET_COOKIE) {
            if let Ok(value) = value.to_str() {
                self.store_cookie(value);
            }
        }
        let status = response.status();
        let location = if status.is_redirection() {
            response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned)
        } else {
            None
        };
        let body = response
            .text()
            .await
            .map_err(|e| format!("read a page of the provider: {e}"))?;
        Ok(Page {
            status,
            location,
            body,
        })
    }

    /// Keeps a `Set-Cookie`, or forgets it when the provider clears it (an empty value
    /// and a 1970 expiry).
    fn store_cookie(&mut self, header: &str) {
        let mut parts = header.split(';').map(str::trim);
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
            return;
        };
        let mut path = "/".to_owned();
        let mut cleared = value.is_empty();
        for attribute in parts {
            let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
            if key.eq_ignore_ascii_case("path") {
                path = val.to_owned();
            } else if key.eq_ignore_ascii_case("expires") && val.contains("1970") {
                cleared = true;
            }
        }
        self.cookies.retain(|c| !(c.name == name && c.path == path));
        if !cleared {
            self.cookies.push(Cookie {
                name: name.to_owned(),
                path,
                value: value.to_owned(),
            });
        }
    }
}

/// The path of an absolute or relative URL, without query.
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or("/")
}

/// RFC 6265 path matching.
fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/')
                || request_path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}

/// The value of `<input type="hidden" name="NAME" value="...">` in devInteractions' and
/// the device flow's forms (both put `name` right before `value`).
fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(unescape(&html[start..start + end]))
}

/// The `action` of the first form on the page.
fn form_action(html: &str) -> Option<String> {
    let form = html.find("<form")?;
    let marker = "action=\"";
    let start = form + html[form..].find(marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(unescape(&html[start..start + end]))
}

fn unescape(text: &str) -> String {
    text.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_scoped_to_an_interaction_go_only_to_its_pages() {
        assert!(path_matches("/interaction/abc", "/interaction/abc"));
        assert!(path_matches("/interaction/abc", "/interaction/abc/login"));
        assert!(!path_matches("/interaction/abc", "/interaction/abcd"));
        assert!(!path_matches("/interaction/abc", "/device/abc"));
        assert!(path_matches("/", "/device/abc"));
    }

    #[test]
    fn url_paths_drop_host_and_query() {
        assert_eq!(url_path("http://127.0.0.1:1/auth/x?y=1"), "/auth/x");
        assert_eq!(url_path("http://127.0.0.1:1"), "/");
        assert_eq!(url_path("/device?user_code=A"), "/device");
    }

    #[test]
    fn form_fields_are_found_in_devinteractions_markup() {
        let html = r#"<form autocomplete="off" action="http://127.0.0.1:9/interaction/u1" method="post">
  <input type="hidden" name="prompt" value="login"/>"#;
        assert_eq!(hidden_input(html, "prompt").as_deref(), Some("login"));
        assert_eq!(
            form_action(html).as_deref(),
            Some("http://127.0.0.1:9/interaction/u1")
        );
    }
}
