//! An invalid environment is reported by variable name, never by value: `RACEWAY_API_KEY`
//! and the endpoint's password must not be echoed. Each case runs `Config::from_env` in a
//! child process of this test binary (the environment is the process's: setting it here
//! would reach every other test).

use std::process::Command;

use raceway_proto::config::{Config, ConfigError};

const KEY: &str = "rk_live_ENVKEY_91ab";
const PASSWORD: &str = "pw_s3cr3t";

/// Runs the child with `vars` set (every other `RACEWAY_*` removed); returns its output.
fn child(vars: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["secrets_env::env_child", "--exact", "--ignored", "--nocapture"]);
    for (name, _) in std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))) {
        if name.starts_with("RACEWAY_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("RACEWAY_SECRETS_ENV_CHILD", "1");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("child: "), "the child ran: {text}");
    text
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(KEY), "the key is echoed: {text}");
    assert!(!text.contains("ENVKEY"), "part of the key is echoed: {text}");
    assert!(!text.contains(PASSWORD), "the password is echoed: {text}");
}

#[test]
fn an_invalid_endpoint_from_the_environment_names_the_variable() {
    let endpoint = format!("ftp://user:{PASSWORD}@raceway.example?key={KEY}");
    let out = child(&[("RACEWAY_ENDPOINT", &endpoint), ("RACEWAY_API_KEY", KEY)]);
    assert!(out.contains("InvalidVar { name: \"RACEWAY_ENDPOINT\""), "{out}");
    assert!(
        out.contains("environment variable RACEWAY_ENDPOINT must be an http:// or https:// URL"),
        "{out}"
    );
    assert_no_secret(&out);
}

#[test]
fn an_api_key_with_a_newline_or_an_invisible_character_names_the_variable() {
    for bad in [
        format!("{KEY}\nx-injected: 1"),
        format!("{KEY}\u{7f}"),
        format!("{KEY}\u{200b}"),
        format!("Bearer {KEY}"),
    ] {
        let out = child(&[
            ("RACEWAY_ENDPOINT", "http://127.0.0.1:9"),
            ("RACEWAY_API_KEY", &bad),
        ]);
        assert!(out.contains("InvalidVar { name: \"RACEWAY_API_KEY\""), "{out}");
        assert!(
            out.contains("environment variable RACEWAY_API_KEY must be"),
            "{out}"
        );
        assert_no_secret(&out);
    }
}

#[test]
fn a_valid_environment_with_secrets_prints_none_of_them() {
    let endpoint = format!("https://user:{PASSWORD}@raceway.example:8443");
    let out = child(&[
        ("RACEWAY_ENDPOINT", &endpoint),
        ("RACEWAY_API_KEY", KEY),
        ("RACEWAY_CA_FILE", "/etc/raceway/ca.pem"),
    ]);
    assert!(out.contains("child: ok Config {"), "{out}");
    assert!(out.contains("https://***@raceway.example:8443"), "{out}");
    assert!(out.contains("api_key: Some(<redacted>)"), "{out}");
    assert!(out.contains("ca_file: Some(\"/etc/raceway/ca.pem\")"), "{out}");
    assert_no_secret(&out);
}

/// The child: prints what `Config::from_env` gives, in every form a user might print it.
#[test]
#[ignore = "a child process of the secrets_env tests"]
fn env_child() {
    if std::env::var_os("RACEWAY_SECRETS_ENV_CHILD").is_none() {
        return;
    }
    match Config::from_env() {
        Ok(c) => {
            println!("child: ok {c:?}");
            println!("child: pretty {c:#?}");
            println!("child: validate {:?}", c.validate(true));
        }
        Err(e) => {
            let e: ConfigError = e;
            println!("child: err {e:?} | {e:#?} | {e}");
        }
    }
    // The constructors' path: the environment is ignored with a warning, and said why.
    let (c, e) = Config::for_client("http://127.0.0.1:9", "svc", None, None, true);
    println!("child: for_client {c:?} {e:?}");
}
