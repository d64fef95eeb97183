//! Download a POP3 mailbox into a directory, one file per message — the `pop3` crate on
//! its own, without the rest of popdesk.
//!
//! ```sh
//! POP3_PASSWORD=... cargo run -p pop3 --example fetch -- \
//!     --host pop.example.com --user me@example.com --out ./mail [--delete]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use pop3::{AuthMethod, Client, ConnectOptions, Credentials, Security};

#[derive(Parser)]
#[command(about = "Download a POP3 mailbox into a directory (password from $POP3_PASSWORD)")]
struct Args {
    #[arg(long)]
    host: String,
    #[arg(long)]
    port: Option<u16>,
    /// implicit, starttls or none
    #[arg(long, default_value = "implicit")]
    tls: Security,
    #[arg(long)]
    user: String,
    /// auto, user, apop, plain, login, cram-md5, xoauth2, oauthbearer ($POP3_PASSWORD holds the token)
    #[arg(long, default_value = "auto")]
    auth: AuthMethod,
    /// Extra CA certificates (PEM).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Where to write the messages (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Delete each message from the server once it is written and synced.
    #[arg(long)]
    delete: bool,
    /// Allow the password over an unencrypted connection.
    #[arg(long)]
    allow_insecure_auth: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("POP3_PASSWORD").map_err(|_| "set POP3_PASSWORD")?;
    let port = args.port.unwrap_or(match args.tls {
        Security::Implicit => 995,
        _ => 110,
    });
    let mut options = ConnectOptions::new(args.host, port, args.tls);
    options.ca_file = args.ca_file;
    options.allow_insecure_auth = args.allow_insecure_auth;
    let credentials = match args.auth {
        AuthMethod::XOAuth2 | AuthMethod::OAuthBearer => Credentials::oauth2(args.user, secret),
        _ => Credentials::password(args.user, secret),
    };

    let mut client = Client::connect(&options).await?;
    let method = client.authenticate(&credentials, args.auth).await?;
    let uidl = client.uidl().await?;
    eprintln!("logged in with {}; {} messages", method.name(), uidl.len());
    tokio::fs::create_dir_all(&args.out).await?;
    let mut stored = Vec::new();
    for entry in &uidl {
        // The UIDL's text form is safe as a file name except for '/'.
        let name = entry.uid.as_str().replace('/', "%2F");
        let path = args.out.join(format!("{name}.eml"));
        let mut file = tokio::fs::File::create(&path).await?;
        let retrieved = client.retr(entry.number, &mut file).await?;
        file.sync_all().await?;
        stored.push(entry.number);
        eprintln!("{} ({} octets)", path.display(), retrieved.octets);
    }
    if args.delete {
        for (number, result) in client.dele_batch(&stored).await? {
            if let Err(refused) = result {
                eprintln!("message {number} not deleted: {refused}");
            }
        }
    }
    let outcome = client.quit().await;
    eprintln!("done: {outcome:?}");
    Ok(())
}
