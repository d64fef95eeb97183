//! The fault proxy does exactly the fault it is set to, and nothing else.

use testkit::{Dovecot, Fault, FaultProxy, RawSession};

fn dovecot_with_mail() -> Dovecot {
    let dovecot = Dovecot::start();
    dovecot.add_user("u", "p");
    dovecot.deliver("u", b"Subject: one\r\n\r\nbody one\r\n");
    dovecot.deliver("u", b"Subject: two\r\n\r\nbody two\r\n");
    dovecot
}

#[tokio::test]
async fn no_fault_passes_everything_through() {
    let dovecot = dovecot_with_mail();
    let proxy = FaultProxy::start(dovecot.pop3_addr());
    let mut pop = RawSession::connect(proxy.addr()).await.expect("connect");
    assert!(pop.login("u", "p").await.expect("login").starts_with("+OK"));
    assert_eq!(pop.command("STAT").await.expect("STAT"), "+OK 2 52");
    assert_eq!(proxy.connections(), 1);
}

#[tokio::test]
async fn hide_uidl_removes_it_from_capa_and_refuses_it() {
    let dovecot = dovecot_with_mail();
    let proxy = FaultProxy::start(dovecot.pop3_addr());
    proxy.set_fault(Fault::HideUidl);
    let mut pop = RawSession::connect(proxy.addr()).await.expect("connect");
    assert!(pop.login("u", "p").await.expect("login").starts_with("+OK"));
    pop.send("CAPA").await.expect("send");
    let capa = pop.read_multiline().await.expect("CAPA");
    assert!(capa.iter().any(|l| l == "TOP"), "{capa:?}");
    assert!(!capa.iter().any(|l| l == "UIDL"), "{capa:?}");
    assert!(pop.command("UIDL").await.expect("UIDL").starts_with("-ERR"));
    assert!(
        pop.command("STAT")
            .await
            .expect("STAT")
            .starts_with("+OK 2")
    );
}

#[tokio::test]
async fn ignore_dele_and_quit_err_leave_the_mail_on_the_server() {
    let dovecot = dovecot_with_mail();
    let proxy = FaultProxy::start(dovecot.pop3_addr());
    proxy.set_fault(Fault::IgnoreDele);
    let mut pop = RawSession::connect(proxy.addr()).await.expect("connect");
    pop.login("u", "p").await.expect("login");
    assert!(
        pop.command("DELE 1")
            .await
            .expect("DELE")
            .starts_with("+OK")
    );
    assert!(pop.command("QUIT").await.expect("QUIT").starts_with("+OK"));
    assert_eq!(dovecot.message_count("u"), 2);

    proxy.set_fault(Fault::QuitErr);
    let mut pop = RawSession::connect(proxy.addr()).await.expect("connect");
    pop.login("u", "p").await.expect("login");
    assert!(
        pop.command("DELE 1")
            .await
            .expect("DELE")
            .starts_with("+OK")
    );
    assert!(pop.command("QUIT").await.expect("QUIT").starts_with("-ERR"));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(dovecot.message_count("u"), 2, "the server rolled back");
}

#[tokio::test]
async fn cut_after_server_bytes_ends_the_connection_there() {
    let dovecot = dovecot_with_mail();
    let proxy = FaultProxy::start(dovecot.pop3_addr());
    proxy.set_fault(Fault::CutAfterServerBytes(10));
    let mut pop = RawSession::connect(proxy.addr()).await;
    // The greeting itself is longer than 10 octets: it never arrives whole.
    if let Ok(pop) = pop.as_mut() {
        assert!(pop.command("NOOP").await.is_err());
    }
    // The proxy counts the cut once its side has closed; give it a moment.
    for _ in 0..100 {
        if proxy.cuts() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(proxy.cuts(), 1);
}
