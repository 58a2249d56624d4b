//! The reverse proxy itself: HTTP/1.1 through hyper (no parsing here), bodies streamed both
//! ways, WebSocket (and any other) upgrades spliced, hop-by-hop headers dropped (RFC 9110
//! §7.6.1), Flint's credentials stripped, and the upstream told `Host: localhost:PORT` (dev
//! servers such as Vite refuse unknown hosts) with the original in `X-Forwarded-Host`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::tunnel::{TunnelError, Tunnels, upstream_uri};
use super::{TOKEN_HEADER, Target, error_page, is_flint_cookie};
use crate::app::AppState;
use crate::sessions::Sessions;

/// Idle tunnels kept per session and port for the next request.
const IDLE_TUNNELS_PER_PORT: usize = 8;

/// The pooled client, one per server.
#[derive(Clone)]
pub struct Proxy {
    client: Client<Tunnels, Body>,
}

impl Proxy {
    /// A client whose connections are tunnels into `sessions`' sandboxes.
    pub fn new(sessions: Arc<Sessions>) -> Proxy {
        let client = Client::builder(TokioExecutor::new())
            .set_host(false)
            // Idle tunnels hold their session's slots (`Sessions::tunnel_slot`): keep a few
            // per port, briefly, so one port's burst never starves another's requests.
            .pool_idle_timeout(std::time::Duration::from_secs(10))
            .pool_max_idle_per_host(IDLE_TUNNELS_PER_PORT)
            .build(Tunnels { sessions });
        Proxy { client }
    }
}

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1), besides those
/// `Connection` names.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn is_upgrade(headers: &HeaderMap) -> Option<HeaderValue> {
    let connection = headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
    });
    if connection { headers.get(header::UPGRADE).cloned() } else { None }
}

/// Drops hop-by-hop headers (and whatever `Connection` lists).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// Drops the app's `Set-Cookie`s that would reach past its own host or into Flint's: one
/// naming a Flint cookie, or with a `Domain` (it would be sent to every preview of every
/// session under that domain).
fn strip_foreign_set_cookies(headers: &mut HeaderMap) {
    let kept: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|value| {
            let Ok(text) = value.to_str() else { return false };
            let mut parts = text.split(';');
            let name = parts.next().unwrap_or_default().split('=').next().unwrap_or_default();
            let domain = parts.any(|attribute| {
                let key = attribute.split('=').next().unwrap_or_default();
                key.trim().eq_ignore_ascii_case("domain")
            });
            !is_flint_cookie(name) && !domain
        })
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for value in kept {
        headers.append(header::SET_COOKIE, value);
    }
}

/// Removes Flint's cookies from `Cookie`, keeping the app's own.
fn strip_flint_cookies(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            !pair.is_empty() && !is_flint_cookie(name)
        })
        .map(str::to_owned)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(header::COOKIE, value);
    }
}

/// Forwards one request to the target port and streams the answer back.
pub async fn forward(
    state: &AppState,
    target: &Target,
    peer: Option<SocketAddr>,
    mut request: Request,
    wants_html: bool,
    ends: Option<std::sync::Arc<tokio_util::sync::CancellationToken>>,
) -> Response {
    let upgrade = is_upgrade(request.headers());
    let original_host = request.headers().get(header::HOST).cloned();
    let path = request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let uri =
        match upstream_uri(&target.session, target.port, if path.is_empty() { "/" } else { &path })
        {
            Ok(uri) => uri,
            Err(e) => return error_page(StatusCode::BAD_REQUEST, wants_html, &e.to_string()),
        };
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut request));
    let (mut parts, body) = request.into_parts();
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    strip_flint_cookies(headers);
    headers.remove(TOKEN_HEADER);
    headers.remove(crate::auth::CSRF_HEADER);
    if let Ok(host) = HeaderValue::from_str(&format!("localhost:{}", target.port)) {
        headers.insert(header::HOST, host);
    }
    if let Some(host) = original_host {
        headers.insert("x-forwarded-host", host);
    }
    let proto = if state.config.public_origin.is_https() { "https" } else { "http" };
    headers.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    if let Some(peer) = peer {
        let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(before) => format!("{before}, {}", peer.ip()),
            None => peer.ip().to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
            headers.insert("x-forwarded-for", value);
        }
    }
    if let Some(protocol) = &upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol.clone());
    }
    let outbound = http::Request::from_parts(parts, body);
    let mut response = match state.proxy.client.request(outbound).await {
        Ok(response) => response,
        Err(e) => {
            let cause = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<TunnelError>())
                .map(|t| (t.status, t.message.clone()));
            let (status, message) = match cause {
                Some(cause) => cause,
                None if e.is_connect() => {
                    (StatusCode::BAD_GATEWAY, format!("port {} could not be reached", target.port))
                }
                None => (
                    StatusCode::BAD_GATEWAY,
                    format!("the app on port {} did not answer: {}", target.port, chain(&e)),
                ),
            };
            return error_page(status, wants_html, &message);
        }
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            if let (Ok(client), Ok(upstream)) = tokio::join!(client_upgrade, upstream_upgrade) {
                let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
                let spliced = tokio::io::copy_bidirectional(&mut client, &mut upstream);
                // The credential it was opened with ended (a token revoked, a sign-out, a
                // guest removed, a share link revoked): both ends are dropped, closed.
                let ended = async {
                    match &ends {
                        Some(signal) => signal.cancelled().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = spliced => {}
                    () = ended => {}
                }
            }
        });
        let (mut parts, _) = response.into_parts();
        strip_foreign_set_cookies(&mut parts.headers);
        return Response::from_parts(parts, Body::empty());
    }
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    strip_foreign_set_cookies(&mut parts.headers);
    Response::from_parts(parts, Body::new(body))
}

/// An error and its causes, outermost first: hyper-util's own says only "client error
/// (SendRequest)", the cause says what happened to the connection.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flint_credentials_and_hop_by_hop_headers_never_pass() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; flint_preview=secret; b=2"));
        headers.append(header::COOKIE, HeaderValue::from_static("flint_session=s"));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("flint_guest=g; __Host-flint_preview=h"),
        );
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-private"));
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer app-own"));
        strip_hop_by_hop(&mut headers);
        strip_flint_cookies(&mut headers);
        assert_eq!(headers.get(header::COOKIE).map(|v| v.to_str().ok()), Some(Some("a=1; b=2")));
        assert!(headers.get("x-private").is_none() && headers.get(header::TE).is_none());
        assert!(headers.get(header::CONNECTION).is_none());
        assert_eq!(
            headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()),
            Some(&b"Bearer app-own"[..])
        );
    }

    #[test]
    fn an_app_sets_no_cookie_for_other_hosts_nor_for_flint() {
        let mut headers = HeaderMap::new();
        for value in [
            "mine=1; Path=/; HttpOnly",
            "flint_session=stolen; Path=/",
            "__Host-flint_preview=forged; Secure; Path=/",
            "wide=1; Path=/; Domain=preview.localhost",
            "wide2=1; domain =.localhost; Path=/",
            "also=2",
        ] {
            headers.append(header::SET_COOKIE, HeaderValue::from_static(value));
        }
        strip_foreign_set_cookies(&mut headers);
        let kept: Vec<&str> =
            headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).collect();
        assert_eq!(kept, ["mine=1; Path=/; HttpOnly", "also=2"]);
    }

    #[test]
    fn an_upgrade_is_recognised_from_connection_and_upgrade() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert_eq!(is_upgrade(&headers).as_ref().map(|v| v.as_bytes()), Some(&b"websocket"[..]));
        headers.remove(header::CONNECTION);
        assert_eq!(is_upgrade(&headers), None);
    }
}
