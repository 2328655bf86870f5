//! The OpenAPI 3.1 document, generated from the handlers' annotations, and a docs page
//! that renders it without anything from the network.

use axum::http::header;
use axum::response::{Html, IntoResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{accounts, catalog, streams};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "panocast", description = "Accounts, stream catalog and playback tokens of a panocast server."),
    paths(
        accounts::login, accounts::refresh, accounts::logout, accounts::register,
        accounts::me, accounts::create_user, accounts::list_users, accounts::jwks,
        catalog::list, catalog::create, catalog::update, catalog::delete,
        catalog::rotate_key, catalog::playback_token, streams::stream_info,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`.
pub async fn openapi_json() -> impl IntoResponse {
    let body = ApiDoc::openapi().to_json().unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body)
}

/// `GET /api/v1/docs`: a self-contained page listing every operation of the document
/// with its parameters, body and answers; no script or style from elsewhere.
pub async fn docs_page() -> impl IntoResponse {
    Html(DOCS_HTML)
}

const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>panocast API</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{margin-top:2rem;border-bottom:1px solid #ccc}
.op{border:1px solid #ddd;border-radius:6px;margin:.8rem 0;padding:.6rem .9rem}
.m{display:inline-block;min-width:4.5rem;font-weight:700;text-transform:uppercase}
.get{color:#0a6}.post{color:#06c}.patch{color:#a60}.delete{color:#c22}
code,pre{font:13px ui-monospace,monospace;background:#f5f5f5}pre{padding:.5rem;overflow:auto}
details summary{cursor:pointer}
</style></head><body>
<h1>panocast API</h1>
<p>The OpenAPI 3.1 document: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p>
<div id="ops">Loading…</div>
<script>
const esc = s => String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
fetch('/api/v1/openapi.json').then(r => r.json()).then(doc => {
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths || {}))
    for (const [method, op] of Object.entries(item))
      (byTag[(op.tags || ['other'])[0]] ||= []).push({path, method, op});
  let html = '';
  for (const [tag, ops] of Object.entries(byTag)) {
    html += `<h2>${esc(tag)}</h2>`;
    for (const {path, method, op} of ops) {
      html += `<div class="op"><span class="m ${method}">${method}</span><code>${esc(path)}</code>`;
      if (op.security) html += ' 🔒';
      html += `<p>${esc(op.description || op.summary || '')}</p>`;
      for (const p of op.parameters || [])
        html += `<div>parameter <code>${esc(p.name)}</code> (${esc(p.in)}${p.required ? ', required' : ''}) ${esc(p.description || '')}</div>`;
      if (op.requestBody) html += `<details><summary>request body</summary><pre>${esc(JSON.stringify(op.requestBody.content, null, 2))}</pre></details>`;
      html += '<details><summary>responses</summary><pre>' + esc(JSON.stringify(op.responses, null, 2)) + '</pre></details></div>';
    }
  }
  html += '<h2>schemas</h2><pre>' + esc(JSON.stringify((doc.components || {}).schemas, null, 2)) + '</pre>';
  document.getElementById('ops').innerHTML = html;
}).catch(e => { document.getElementById('ops').textContent = 'Cannot load the document: ' + e; });
</script></body></html>"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_is_openapi_31_and_docs_page_is_offline() {
        let doc: serde_json::Value =
            serde_json::from_str(&ApiDoc::openapi().to_json().expect("json")).expect("parse");
        assert!(doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")));
        assert!(doc["paths"]["/api/v1/streams/{stream}/playback-token"]["post"].is_object());
        assert!(!DOCS_HTML.contains("http://") && !DOCS_HTML.contains("https://"));
    }
}
