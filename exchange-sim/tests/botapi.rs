//! The Bot API fake over real TLS on loopback: the long poll and its offset, messages recorded
//! and read back, inline keyboards pressed and their callback queries answered, the token
//! check, the HTTP controls and each way of going down.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pinion_exchange_sim::{BotApiConfig, BotApiFake, DownMode, SelfSignedTls};
use pinion_net::rest::{RestClient, RestSettings};
use pinion_net::rustls::RootCertStore;
use pinion_net::wss::{TlsClientConfig, client_config};
use serde_json::Value;

const TOKEN: &str = "42:fake-TOKEN_x";

fn start() -> (BotApiFake, TlsClientConfig, Arc<rustls::ClientConfig>) {
    let tls = SelfSignedTls::generate(&["localhost", "127.0.0.1"]).expect("certificate");
    let fake = BotApiFake::start(
        "127.0.0.1:0".parse().expect("addr"),
        BotApiConfig::new(TOKEN),
        Arc::clone(&tls.server_config),
    )
    .expect("fake");
    let mut roots = RootCertStore::empty();
    roots.add(tls.certificate.clone()).expect("root");
    let raw = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots.clone())
    .with_no_client_auth();
    (fake, client_config(roots).expect("tls"), Arc::new(raw))
}

fn client(fake: &BotApiFake, tls: &TlsClientConfig) -> RestClient {
    RestClient::new(&fake.base_url(), RestSettings::new(tls.clone())).expect("client")
}

fn get(c: &mut RestClient, path: &str) -> (u16, Value) {
    let r = c.get(path).expect("request");
    (
        r.status,
        serde_json::from_slice(&r.body).expect("JSON body"),
    )
}

/// A POST with a JSON body over TLS (the REST client only GETs).
fn post(addr: SocketAddr, tls: &Arc<rustls::ClientConfig>, path: &str, body: &str) -> (u16, Value) {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let conn = rustls::ClientConnection::new(Arc::clone(tls), name).expect("tls");
    let mut s = rustls::StreamOwned::new(conn, tcp);
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8(out).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (status, serde_json::from_str(body).expect("JSON body"))
}

#[test]
fn a_long_poll_waits_for_a_message_and_the_offset_confirms_it() {
    let (fake, tls, raw) = start();
    let mut c = client(&fake, &tls);
    let (status, v) = get(&mut c, &format!("/bot{TOKEN}/getUpdates?timeout=0"));
    assert_eq!(
        (
            status,
            v["ok"].as_bool(),
            v["result"].as_array().map(Vec::len)
        ),
        (200, Some(true), Some(0))
    );
    let addr = fake.local_addr();
    let injector = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        post(
            addr,
            &raw,
            "/fake/inject",
            r#"{"user_id":7,"text":"/status"}"#,
        )
    });
    let started = Instant::now();
    let (status, v) = get(
        &mut c,
        &format!("/bot{TOKEN}/getUpdates?offset=0&timeout=5"),
    );
    let waited = started.elapsed();
    assert_eq!(status, 200);
    assert!(
        waited >= Duration::from_millis(350) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    let (inject_status, injected) = injector.join().expect("injector");
    assert_eq!(inject_status, 200, "{injected}");
    let updates = v["result"].as_array().expect("updates");
    assert_eq!(updates.len(), 1);
    let u = &updates[0];
    assert_eq!(u["message"]["text"], "/status");
    assert_eq!(u["message"]["from"]["id"], 7);
    assert_eq!(u["message"]["chat"]["id"], 7);
    let id = u["update_id"].as_u64().expect("id");
    assert_eq!(injected["result"]["update_id"].as_u64(), Some(id));
    // Not confirmed yet: asked again, it comes again.
    let (_, again) = get(&mut c, &format!("/bot{TOKEN}/getUpdates?timeout=0"));
    assert_eq!(again["result"][0]["update_id"].as_u64(), Some(id));
    let (_, after) = get(
        &mut c,
        &format!("/bot{TOKEN}/getUpdates?offset={}&timeout=0", id + 1),
    );
    assert_eq!(after["result"].as_array().map(Vec::len), Some(0));
    assert_eq!(fake.pending_updates(), 0);
    let second = fake.inject(8, "hello");
    assert_eq!(second, id + 1);
    assert_eq!(fake.stats().polls, 4);
}

#[test]
fn a_button_pressed_arrives_as_a_callback_query_that_is_answered_once() {
    let (fake, tls, raw) = start();
    let addr = fake.local_addr();
    let send = format!("/bot{TOKEN}/sendMessage");
    let body = r#"{"chat_id":7,"text":"Buy?","reply_markup":{"inline_keyboard":[[{"text":"Confirm","callback_data":"ok:1"},{"text":"Drop","callback_data":"no:1"}]]}}"#;
    let (status, v) = post(addr, &raw, &send, body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["result"]["reply_markup"]["inline_keyboard"][0][1]["callback_data"],
        "no:1"
    );
    let message_id = v["result"]["message_id"].as_u64().expect("message id");
    // Data longer than the API's 64 bytes is refused.
    let long = format!(
        r#"{{"chat_id":7,"text":"x","reply_markup":{{"inline_keyboard":[[{{"text":"y","callback_data":"{}"}}]]}}}}"#,
        "d".repeat(65)
    );
    let (status, v) = post(addr, &raw, &send, &long);
    assert_eq!(
        (status, v["description"].as_str()),
        (400, Some("Bad Request: BUTTON_DATA_INVALID"))
    );
    // No such button, or not in that chat: nothing to press.
    let (status, _) = post(addr, &raw, "/fake/press", r#"{"user_id":7,"label":"Nope"}"#);
    assert_eq!(status, 404);
    assert_eq!(fake.press(8, "Confirm"), None);
    let (status, v) = post(
        addr,
        &raw,
        "/fake/press",
        r#"{"user_id":7,"label":"Confirm"}"#,
    );
    assert_eq!(status, 200, "{v}");
    let mut c = client(&fake, &tls);
    let (_, v) = get(&mut c, &format!("/bot{TOKEN}/getUpdates?timeout=0"));
    let q = &v["result"][0]["callback_query"];
    assert_eq!(q["data"], "ok:1");
    assert_eq!(q["from"]["id"], 7);
    assert_eq!(q["message"]["chat"]["id"], 7);
    assert_eq!(q["message"]["message_id"].as_u64(), Some(message_id));
    assert_eq!(q["message"]["text"], "Buy?");
    let id = q["id"].as_str().expect("a query id").to_owned();
    let answer = format!(r#"{{"callback_query_id":"{id}","text":"Received."}}"#);
    let path = format!("/bot{TOKEN}/answerCallbackQuery");
    let (status, v) = post(addr, &raw, &path, &answer);
    assert_eq!((status, v["result"].as_bool()), (200, Some(true)));
    // Answered already, or never delivered: refused as the API refuses an invalid query.
    let (status, _) = post(addr, &raw, &path, &answer);
    assert_eq!(status, 400);
    let (status, _) = post(addr, &raw, &path, r#"{"callback_query_id":"cb999"}"#);
    assert_eq!(status, 400);
    assert_eq!(fake.stats().callbacks_answered, 1);
    let sent = fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].buttons.len(), 2);
    assert_eq!(sent[0].buttons[0].text, "Confirm");
}

#[test]
fn messages_are_recorded_and_a_wrong_token_is_refused() {
    let (fake, tls, raw) = start();
    let mut c = client(&fake, &tls);
    let (status, v) = get(
        &mut c,
        &format!("/bot{TOKEN}/sendMessage?chat_id=-5&text=hi%20there%0A%E2%9C%93"),
    );
    assert_eq!((status, v["ok"].as_bool()), (200, Some(true)), "{v}");
    assert_eq!(v["result"]["text"], "hi there\n✓");
    let (status, v) = get(&mut c, "/botWRONG/sendMessage?chat_id=1&text=x");
    assert_eq!((status, v["error_code"].as_u64()), (401, Some(401)));
    let (status, _) = get(&mut c, &format!("/bot{TOKEN}/sendMessage?chat_id=1"));
    assert_eq!(status, 400);
    let (status, _) = get(&mut c, &format!("/bot{TOKEN}/sendMessage?chat_id=x&text=y"));
    assert_eq!(status, 400);
    let (status, v) = post(
        fake.local_addr(),
        &raw,
        &format!("/bot{TOKEN}/sendMessage"),
        r#"{"chat_id":9,"text":"from a JSON body"}"#,
    );
    assert_eq!(status, 200, "{v}");
    let (status, sent) = get(&mut c, "/fake/sent");
    assert_eq!(status, 200);
    let sent = sent.as_array().expect("list");
    assert_eq!(sent.len(), 2);
    assert_eq!(
        (sent[0]["chat_id"].as_i64(), sent[0]["text"].as_str()),
        (Some(-5), Some("hi there\n✓"))
    );
    assert_eq!(fake.sent()[1].text, "from a JSON body");
    assert_eq!(fake.stats().unauthorized, 1);
}

#[test]
fn the_api_goes_down_in_each_mode_and_comes_back() {
    let (fake, tls, raw) = start();
    let addr = fake.local_addr();
    let mut c = client(&fake, &tls);
    let poll = format!("/bot{TOKEN}/getUpdates?timeout=0");

    // 502 for every Bot API call, asked for over HTTP.
    let (status, _) = post(
        addr,
        &raw,
        "/fake/down",
        r#"{"ms":600,"mode":"bad_gateway"}"#,
    );
    assert_eq!(status, 200);
    assert!(fake.is_down());
    let (status, v) = get(&mut c, &poll);
    assert_eq!((status, v["ok"].as_bool()), (502, Some(false)));
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(get(&mut c, &poll).0, 200);

    // Refused: nothing listens on the port.
    fake.go_down(Duration::from_millis(600), DownMode::Refuse);
    std::thread::sleep(Duration::from_millis(50));
    let e = TcpStream::connect(addr).expect_err("refused while down");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(c.get(&poll).is_err());
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(get(&mut c, &poll).0, 200);

    // Accepted and dropped before TLS.
    fake.go_down(Duration::from_millis(600), DownMode::Close);
    assert!(c.get(&poll).is_err());
    assert!(TcpStream::connect(addr).is_ok());
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(get(&mut c, &poll).0, 200);

    // 429 with the API's retry_after: the seconds left, rounded up.
    fake.go_down(Duration::from_millis(1500), DownMode::TooManyRequests);
    let (status, v) = get(&mut c, &poll);
    assert_eq!(status, 429);
    assert_eq!(v["parameters"]["retry_after"].as_u64(), Some(2), "{v}");
    std::thread::sleep(Duration::from_millis(1600));
    assert_eq!(get(&mut c, &poll).0, 200);

    // A long poll under way ends when the API goes down.
    let waiter = {
        let tls = tls.clone();
        let base = fake.base_url();
        std::thread::spawn(move || {
            let mut c = RestClient::new(&base, RestSettings::new(tls)).expect("client");
            let started = Instant::now();
            let r = c.get(&format!("/bot{TOKEN}/getUpdates?timeout=20"));
            (r.map(|r| r.status), started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    fake.go_down(Duration::from_millis(300), DownMode::BadGateway);
    let (r, took) = waiter.join().expect("waiter");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(!matches!(r, Ok(200)), "{r:?}");
    assert!(fake.stats().failed_while_down >= 3, "{:?}", fake.stats());
    let (status, _) = post(addr, &raw, "/fake/down", r#"{"ms":1,"mode":"sideways"}"#);
    assert_eq!(status, 400);
}

/// Kills the child if the test ends early.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_binary_serves_the_fake_with_the_token_from_the_environment() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};

    let cert = std::env::temp_dir().join(format!("pinion-botapi-bin-{}.pem", std::process::id()));
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_pinion-exchange-sim"))
            .args(["bot-api", "--listen", "127.0.0.1:0", "--cert-out"])
            .arg(&cert)
            .env("PINION_BOT_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the simulator runs"),
    );
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a line");
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("{line:?}"));
    assert!(!line.contains(TOKEN));
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&cert).expect("pem") {
        roots.add(c.expect("certificate")).expect("root");
    }
    let mut c = RestClient::new(
        &format!("https://{addr}"),
        RestSettings::new(client_config(roots).expect("tls")),
    )
    .expect("client");
    let (status, me) = get(&mut c, &format!("/bot{TOKEN}/getMe"));
    assert_eq!(
        (status, me["result"]["is_bot"].as_bool()),
        (200, Some(true))
    );
    assert_eq!(get(&mut c, "/botnope/getMe").0, 401);
    drop(child);
    let _ = std::fs::remove_file(&cert);

    let out = Command::new(env!("CARGO_BIN_EXE_pinion-exchange-sim"))
        .args([
            "bot-api",
            "--listen",
            "127.0.0.1:0",
            "--token-env",
            "PINION_TEST_NO_SUCH_VAR",
        ])
        .env_remove("PINION_TEST_NO_SUCH_VAR")
        .output()
        .expect("the simulator runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PINION_TEST_NO_SUCH_VAR is not set"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
