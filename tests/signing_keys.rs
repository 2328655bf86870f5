//! Token signing key rotation (issue 18 item 5): after a rotation over the API, tokens
//! signed by the old key keep working, new tokens carry the new key id, the JWKS lists
//! both, and all of that survives `kill -9`. The real server over real HTTP.

mod common;

use base64::Engine;
use common::*;
use serde_json::Value;

const ADMIN_PASSWORD: &str = "rotation-admin-password";

async fn admin(c: &reqwest::Client, s: &Server) -> String {
    login(c, s, "admin", ADMIN_PASSWORD).await
}

/// The `kid` in a JWT's header.
fn kid(token: &str) -> String {
    let header = token.split('.').next().expect("header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64url");
    let v: Value = serde_json::from_slice(&bytes).expect("JSON header");
    v["kid"].as_str().expect("kid").to_owned()
}

async fn jwks_kids(c: &reqwest::Client, s: &Server) -> Vec<String> {
    let v = get_json(c, &s.url("/.well-known/jwks.json")).await;
    v["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect()
}

async fn me(c: &reqwest::Client, s: &Server, token: &str) -> u16 {
    call(c, "GET", &s.url("/api/v1/users/me"), Some(token), None)
        .await
        .status
}

#[tokio::test]
async fn old_tokens_keep_working_after_a_rotation_and_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = [("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)];
    let server = Server::start_in(dir.path(), "", &env);
    let c = client();
    let old = admin(&c, &server).await;
    let old_kid = kid(&old);
    assert_eq!(jwks_kids(&c, &server).await, std::slice::from_ref(&old_kid));

    let rotated = call(
        &c,
        "POST",
        &server.url("/api/v1/admin/signing-keys/rotate"),
        Some(&old),
        None,
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_kid = rotated.json["current_kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(rotated.json["retired"][0]["kid"], old_kid.as_str());

    let new = admin(&c, &server).await;
    assert_eq!(kid(&new), new_kid);
    assert_eq!(
        me(&c, &server, &old).await,
        200,
        "the old key still verifies"
    );
    assert_eq!(me(&c, &server, &new).await, 200);
    let mut kids = jwks_kids(&c, &server).await;
    kids.sort();
    let mut both = vec![old_kid.clone(), new_kid.clone()];
    both.sort();
    assert_eq!(kids, both);

    server.kill9();
    let server = Server::start_in(dir.path(), "", &env);
    assert_eq!(me(&c, &server, &old).await, 200, "retired key kept on disk");
    assert_eq!(me(&c, &server, &new).await, 200, "new key kept on disk");
    let fresh = admin(&c, &server).await;
    assert_eq!(kid(&fresh), new_kid);

    // Only admins; the rotation is on the audit log.
    let log = call(
        &c,
        "GET",
        &server.url("/api/v1/admin/audit-log"),
        Some(&fresh),
        None,
    )
    .await;
    assert_eq!(
        log.json["items"][0]["action"],
        "POST /api/v1/admin/signing-keys/rotate"
    );
}

#[tokio::test]
async fn hs256_secrets_are_rotated_in_the_config_and_rotation_needs_a_token() {
    let server = Server::start_with_env(
        "[auth]\njwt_algorithm = \"HS256\"\njwt_secret = \"a-test-secret-of-enough-length-0123456789\"\n",
        &[("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    );
    let c = client();
    let admin = admin(&c, &server).await;
    let url = server.url("/api/v1/admin/signing-keys/rotate");
    let a = call(&c, "POST", &url, Some(&admin), None).await;
    assert_eq!(a.status, 409, "{}", a.text);
    assert_eq!(a.content_type, "application/problem+json");
    let a = call(&c, "POST", &url, None, None).await;
    assert_eq!(a.status, 401, "{}", a.text);
}
