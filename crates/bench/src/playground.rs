//! `popdesk-bench playground`: a private Dovecot on loopback with generated mail, for
//! trying popdesk by hand (the progress bar, `mailbox test`, the ticket commands). It
//! prints the commands to point popdesk at it and runs until Ctrl-C or its time is up.

use std::time::Duration;

use anyhow::Result;

use crate::mailbox::{self, MailboxSpec};

pub fn run(spec: &MailboxSpec, minutes: u64) -> Result<bool> {
    let dovecot = testkit::Dovecot::start();
    dovecot.add_user("support", "playground");
    let messages = mailbox::generate(spec);
    let count = dovecot.deliver_many("support", messages.iter().map(|m| &m.bytes));
    println!("a private Dovecot with {count} messages for user support (password: playground)");
    println!();
    println!("  export PLAYGROUND_PASSWORD=playground");
    println!(
        "  popdesk --data /tmp/popdesk-playground mailbox add support --host {} --port {} \\\n      --user support --password-env PLAYGROUND_PASSWORD --ca-file {}",
        dovecot.host(),
        dovecot.pop3s_addr().port(),
        dovecot.ca_pem_path().display()
    );
    println!("  popdesk --data /tmp/popdesk-playground mailbox fetch support");
    println!();
    println!("(stops by itself after {minutes} minutes)");
    std::thread::sleep(Duration::from_secs(minutes * 60));
    Ok(true)
}
