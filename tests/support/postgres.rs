//! What the PostgreSQL quickstarts' tests share: the skip when PostgreSQL is not
//! installed, the quickstarts' password, a lab the postgres user can reach, and the
//! notice that moves db off acme-cloud.

#![allow(dead_code)]

use super::cli::Lab;
use lifeboat_testkit::repo_root;

/// The quickstarts' password file, relative to the repository.
pub const PASSWORD_FILE: &str = "examples/quickstart-postgres.password";

/// Returns from the test, saying why, when PostgreSQL is not on this machine.
#[macro_export]
macro_rules! require_postgres {
    () => {
        if let Some(why) = lifeboat_testkit::postgres::unavailable() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

/// The quickstarts' password.
pub fn password() -> String {
    std::fs::read_to_string(repo_root().join(PASSWORD_FILE))
        .expect("the quickstart's password")
        .trim()
        .to_owned()
}

/// The password file's absolute path, as YAML.
pub fn password_file() -> serde_yaml::Value {
    serde_yaml::Value::String(
        repo_root()
            .join(PASSWORD_FILE)
            .to_string_lossy()
            .into_owned(),
    )
}

/// PostgreSQL runs as its own user when the tests run as root: it must reach the
/// copies' folders inside the lab.
pub fn open_to_postgres(lab: &Lab) {
    std::fs::set_permissions(
        lab.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("opening the lab folder to the postgres user");
}

/// Raises a notice for acme-cloud through the CLI, as an operator would.
pub fn notice_for_acme_cloud(lab: &Lab) {
    let out = lab.run(&[
        "notice",
        "raise",
        "-c",
        lab.config_arg(),
        "--target",
        "acme-cloud",
        "--reason",
        "the account is being closed",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.output());
}
