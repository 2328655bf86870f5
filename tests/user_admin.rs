//! Admins change an account's role and disable it (issue 15, for the console's users
//! page): `PATCH /api/v1/users/{user}`. A disabled user cannot log in or refresh; the
//! change is admins-only and on the audit log. The real server over real HTTP.

mod common;

use common::*;
use serde_json::json;

const ADMIN_PASSWORD: &str = "users-admin-password-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_change_roles_and_disable_accounts() {
    let server = Server::start_with_env("", &[("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let c = client();
    let admin = login(&c, &server, "admin", ADMIN_PASSWORD).await;

    let made = api(
        &c,
        &server,
        &admin,
        "POST",
        "/api/v1/users",
        Some(json!({"username": "cam-op", "password": "cam-op-password-1", "role": "viewer"})),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text);
    assert_eq!(made.json["disabled"], false);
    let id = made.json["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/users/{id}");

    // A viewer may not change accounts, their own included.
    let viewer = login(&c, &server, "cam-op", "cam-op-password-1").await;
    let refused = api(
        &c,
        &server,
        &viewer,
        "PATCH",
        &path,
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(refused.content_type, "application/problem+json");

    // Promotion: the next login's token carries the new role.
    let promoted = api(
        &c,
        &server,
        &admin,
        "PATCH",
        &path,
        Some(json!({"role": "broadcaster"})),
    )
    .await;
    assert_eq!(promoted.status, 200, "{}", promoted.text);
    assert_eq!(promoted.json["role"], "broadcaster");
    let broadcaster = login(&c, &server, "cam-op", "cam-op-password-1").await;
    let streams = api(
        &c,
        &server,
        &broadcaster,
        "POST",
        "/api/v1/streams",
        Some(json!({"slug": "cam-op-stream"})),
    )
    .await;
    assert_eq!(
        streams.status, 201,
        "a broadcaster creates streams: {}",
        streams.text
    );

    // A refresh token from before the account is disabled stops working with it.
    let session = call(
        &c,
        "POST",
        &server.url("/api/v1/auth/login"),
        None,
        Some(json!({"username": "cam-op", "password": "cam-op-password-1"}).to_string()),
    )
    .await;
    let refresh_token = session.json["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let disabled = api(
        &c,
        &server,
        &admin,
        "PATCH",
        &path,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    assert_eq!(disabled.json["disabled"], true);
    let login_refused = call(
        &c,
        "POST",
        &server.url("/api/v1/auth/login"),
        None,
        Some(json!({"username": "cam-op", "password": "cam-op-password-1"}).to_string()),
    )
    .await;
    assert_eq!(login_refused.status, 401, "{}", login_refused.text);
    let refresh_refused = call(
        &c,
        "POST",
        &server.url("/api/v1/auth/refresh"),
        None,
        Some(json!({ "refresh_token": refresh_token }).to_string()),
    )
    .await;
    assert_eq!(refresh_refused.status, 401, "{}", refresh_refused.text);
    // The access token signed before the change stops working at once, not at its
    // expiry: on reads and on changes.
    for (method, route, body) in [
        ("GET", "/api/v1/users/me", None),
        (
            "POST",
            "/api/v1/streams",
            Some(json!({"slug": "after-disable"})),
        ),
    ] {
        let stale = api(&c, &server, &broadcaster, method, route, body).await;
        assert_eq!(stale.status, 401, "{method} {route}: {}", stale.text);
        assert_eq!(stale.content_type, "application/problem+json");
        assert!(stale.text.contains("disabled"), "{}", stale.text);
    }
    let listed = api(&c, &server, &admin, "GET", "/api/v1/users", None).await;
    let row = listed.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|u| u["username"] == "cam-op")
        .cloned()
        .expect("listed");
    assert_eq!(row["disabled"], true);

    // Enabled again: the password works again.
    let enabled = api(
        &c,
        &server,
        &admin,
        "PATCH",
        &path,
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!(enabled.json["disabled"], false, "{}", enabled.text);
    let again = login(&c, &server, "cam-op", "cam-op-password-1").await;
    let me_again = api(&c, &server, &again, "GET", "/api/v1/users/me", None).await;
    assert_eq!(me_again.status, 200, "{}", me_again.text);

    // Bad input and the admin's own account.
    let me = api(&c, &server, &admin, "GET", "/api/v1/users/me", None).await;
    let my_path = format!("/api/v1/users/{}", me.json["id"].as_str().expect("my id"));
    for (body, status) in [
        (json!({"disabled": true}), 409),
        (json!({"role": "viewer"}), 409),
        (json!({"role": "emperor"}), 422),
        (json!({"colour": "blue"}), 422),
    ] {
        let a = api(&c, &server, &admin, "PATCH", &my_path, Some(body.clone())).await;
        assert_eq!(a.status, status, "{body}: {}", a.text);
        assert_eq!(a.content_type, "application/problem+json");
    }
    let missing = api(
        &c,
        &server,
        &admin,
        "PATCH",
        "/api/v1/users/usr_nobody",
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(missing.status, 404, "{}", missing.text);

    // On the audit log, as the admin's change of that account.
    let log = api(
        &c,
        &server,
        &admin,
        "GET",
        "/api/v1/admin/audit-log?limit=100",
        None,
    )
    .await;
    let changes: Vec<_> = log.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["action"] == "PATCH /api/v1/users/{user}" && e["target"] == path.as_str())
        .map(|e| e["status"].as_u64().unwrap_or_default())
        .collect();
    assert_eq!(changes, vec![200, 200, 200], "{}", log.text);
}
