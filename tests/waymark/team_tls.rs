//! Team mode over TLS as libpq's `sslmode` means it, against a throwaway cluster serving
//! `ssl = on` with a certificate made here by a test authority, and accepting only TLS
//! (`hostssl`): `require` encrypts, `verify-full` checks who signed the certificate and
//! the name, `verify-ca` only who signed it, and every refusal names the server and the fix.

use crate::harness::{expect_code, Test};
use crate::pg;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};
use std::process::Output;

/// A certificate and its key, in PEM.
struct Issued {
    cert: X509,
    key: PKey<Private>,
}

impl Issued {
    fn cert_pem(&self) -> String {
        String::from_utf8(self.cert.to_pem().unwrap()).unwrap()
    }
}

/// A certificate for `cn`: a certificate authority when `issuer` is `None` (self-signed),
/// else a server certificate for the address 127.0.0.1 signed by `issuer`.
fn issue(cn: &str, issuer: Option<&Issued>) -> Issued {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    match issuer {
        None => {
            b.set_issuer_name(&name).unwrap();
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .unwrap(),
            )
            .unwrap();
            b.sign(&key, MessageDigest::sha256()).unwrap();
        }
        Some(ca) => {
            b.set_issuer_name(ca.cert.subject_name()).unwrap();
            let san = SubjectAlternativeName::new()
                .ip("127.0.0.1")
                .build(&b.x509v3_context(Some(&ca.cert), None))
                .unwrap();
            b.append_extension(san).unwrap();
            b.sign(&ca.key, MessageDigest::sha256()).unwrap();
        }
    }
    Issued {
        cert: b.build(),
        key,
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn sslmode_require_encrypts_and_verify_full_trusts_only_the_right_authority() {
    let Some(c) =
        pg::own_cluster("sslmode_require_encrypts_and_verify_full_trusts_only_the_right_authority")
    else {
        return;
    };
    let ca = issue("waymark test authority", None);
    let server = issue("waymark test server", Some(&ca));
    let stranger = issue("someone else's authority", None);
    c.enable_tls(
        &server.cert_pem(),
        &String::from_utf8(server.key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
        true,
    );
    c.database("tls");
    let t = Test::new()
        .file("ca.crt", &ca.cert_pem())
        .file("wrong-ca.crt", &stranger.cert_pem())
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "t", description: "d" });
step("one", #{ run: |ctx| log("over tls") });
step("two", #{ after: "one", run: |ctx| () });"#,
        );
    let wm = |url: &str, args: &[&str]| {
        t.bare()
            .args(args)
            .args(["--state-dir", url])
            // No ~/.postgresql/root.crt or PGSSL* setting of this machine's may count.
            .env("HOME", t.path())
            .env_remove("PGSSLMODE")
            .env_remove("PGSSLROOTCERT")
            .output()
            .unwrap()
    };
    // The password is ignored by the `trust` server, but must never be shown.
    let base = format!("postgres://postgres:Pw-Secret-77@127.0.0.1:{}/tls", c.port);
    let root = t.path().join("ca.crt");
    let wrong = t.path().join("wrong-ca.crt");
    let server_name = format!("127.0.0.1:{}", c.port);

    // require: encrypted without checking who answers; a whole run works over it.
    let o = wm(&format!("{base}?sslmode=require"), &["run", "rb.rhai"]);
    expect_code(&o, 0);

    // verify-full with the authority that signed the server's certificate.
    let full = format!("{base}?sslmode=verify-full&sslrootcert={}", root.display());
    let o = wm(&full, &["run", "rb.rhai"]);
    expect_code(&o, 0);
    let o = wm(&full, &["runs", "--json"]);
    expect_code(&o, 0);
    let runs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 2, "{runs}");

    // verify-full with another authority: refused, naming the server and the fix.
    let o = wm(
        &format!("{base}?sslmode=verify-full&sslrootcert={}", wrong.display()),
        &["runs"],
    );
    expect_code(&o, 2);
    let e = text(&o);
    assert!(
        e.contains(&format!(
            "the certificate of server {server_name} is not signed by the root certificate {}",
            wrong.display()
        )),
        "{e}"
    );
    assert!(e.contains("help: set sslrootcert=PATH"), "{e}");
    assert!(!e.contains("Pw-Secret-77"), "{e}");

    // The name is checked by verify-full, not by verify-ca: reached as `localhost`, a
    // certificate issued for 127.0.0.1 does not match.
    let by_name = format!(
        "postgres://postgres@localhost:{}/tls?hostaddr=127.0.0.1&sslrootcert={}",
        c.port,
        root.display()
    );
    let o = wm(&format!("{by_name}&sslmode=verify-full"), &["runs"]);
    expect_code(&o, 2);
    let e = text(&o);
    assert!(
        e.contains(&format!(
            "server localhost:{} was not issued for that name",
            c.port
        )),
        "{e}"
    );
    assert!(e.contains("sslmode=verify-ca"), "{e}");
    expect_code(&wm(&format!("{by_name}&sslmode=verify-ca"), &["runs"]), 0);

    // Without a root certificate nothing can be verified: said before connecting.
    let o = wm(&format!("{base}?sslmode=verify-full"), &["runs"]);
    expect_code(&o, 2);
    assert!(text(&o).contains("add sslrootcert=PATH"), "{}", text(&o));

    // The server accepts only TLS: disable is refused, saying so.
    let o = wm(&format!("{base}?sslmode=disable"), &["runs"]);
    expect_code(&o, 2);
    let e = text(&o);
    assert!(
        e.contains(&format!(
            "server {server_name} refused a connection without TLS (sslmode=disable)"
        )) && e.contains("hostssl"),
        "{e}"
    );
    assert!(!e.contains("Pw-Secret-77"), "{e}");
}
