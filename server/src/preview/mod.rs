//! Preview URLs: `{port}-{session}.{preview domain}` reaches whatever listens on that port in
//! the session's sandbox, through the agent's tunnel (never the host's network).
//!
//! **Access.** A port is private: only its session's owner. A browser gets in with a
//! single-use ticket (30 s) in the URL, exchanged for a host-only cookie; without one it is
//! bounced to the app (`/preview/open`), which mints a ticket from the app's cookie and sends
//! it back. Scripts send a token in `X-Flint-Token`, so the app's own `Authorization` passes
//! through untouched. Flint's cookie and headers never reach the upstream.

mod access;
pub mod proxy;
pub mod tunnel;

use access::Holder;
pub use access::Previews;

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;

use crate::app::AppState;
use crate::auth::hash_token;

/// The default preview domain: browsers and curl resolve `*.localhost` to loopback.
pub const DEFAULT_DOMAIN: &str = "preview.localhost";

/// The proxy's cookie on a preview host.
pub const COOKIE: &str = "flint_preview";

/// Its name over HTTPS: `__Host-` makes browsers refuse it unless it is `Secure`, for `/`
/// and host-only, so no other host (nor the app over plain HTTP) can set one.
pub const SECURE_COOKIE: &str = "__Host-flint_preview";

/// The preview cookie's name for this server's scheme.
fn cookie_name(state: &AppState) -> &'static str {
    if state.config.public_origin.is_https() { SECURE_COOKIE } else { COOKIE }
}

/// Whether a cookie is Flint's own (never forwarded to an app, nor set by one): ours all
/// start `flint_`, also behind a `__Host-` or `__Secure-` prefix.
pub fn is_flint_cookie(name: &str) -> bool {
    let name = name.trim();
    let bare =
        name.strip_prefix("__Host-").or_else(|| name.strip_prefix("__Secure-")).unwrap_or(name);
    bare.to_ascii_lowercase().starts_with("flint_")
}

/// Scripts' credential on a preview host.
pub const TOKEN_HEADER: &str = "x-flint-token";

/// The query parameter carrying a ticket.
pub const TICKET_PARAM: &str = "flint_ticket";

/// The query parameter carrying a share link's secret.
pub const SHARE_PARAM: &str = "flint_share";

/// How long a ticket may wait to be used.
const TICKET_TTL: Duration = Duration::from_secs(30);

/// How long a preview cookie lasts.
const COOKIE_TTL: Duration = Duration::from_secs(12 * 3600);

/// A preview host, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The guest port.
    pub port: u16,
    /// The session id.
    pub session: String,
}

impl Target {
    /// `{port}-{session}.{domain}` (any port after it), or `None` for any other host.
    pub fn parse(host: &str, domain: &str) -> Option<Target> {
        let host = host.trim().to_ascii_lowercase();
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => &host,
        };
        let label = name.strip_suffix(domain)?.strip_suffix('.')?;
        let (port, session) = label.split_once('-')?;
        // One spelling per port: digits only (`u16::from_str` takes `+8000`), no leading zero.
        if port.is_empty() || port.starts_with('0') || !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let port: u16 = port.parse().ok()?;
        let valid = !session.is_empty()
            && session.len() <= 40
            && session.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        valid.then(|| Target { port, session: session.to_owned() })
    }

    /// The host name (without the listener's port).
    pub fn host(&self, domain: &str) -> String {
        format!("{}.{domain}", self.label())
    }

    /// The first label of the host name: `{port}-{session}`.
    pub fn label(&self) -> String {
        format!("{}-{}", self.port, self.session)
    }
}

/// In front of everything: a request for a preview host goes to the proxy, any other on.
pub async fn dispatch(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    let Some(target) = host.and_then(|h| Target::parse(&h, &state.config.preview.domain)) else {
        return next.run(request).await;
    };
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    serve(&state, target, peer, request).await
}

async fn serve(
    state: &AppState,
    target: Target,
    peer: Option<SocketAddr>,
    request: Request,
) -> Response {
    let wants_html = wants_html(request.headers());
    let record = match state.previews.session(state, &target.session).await {
        Some(record) => record,
        None => {
            return error_page(
                StatusCode::NOT_FOUND,
                wants_html,
                &format!("There is no session {}.", target.session),
            );
        }
    };
    // A ticket or a share link in the URL: trade it for a cookie and drop it from the
    // address bar.
    if let Some(ticket) = query_param(request.uri(), TICKET_PARAM) {
        return match state.previews.redeem(&ticket, &target) {
            Some(cookie) => with_cookie(state, &target, request.uri(), TICKET_PARAM, &cookie),
            None => error_page(
                StatusCode::FORBIDDEN,
                wants_html,
                "This preview link was already used or has expired. Open the preview again \
                 from Flint.",
            ),
        };
    }
    if let Some(secret) = query_param(request.uri(), SHARE_PARAM) {
        let share = state.store.share_by_secret(&hash_token(&secret)).await.ok().flatten();
        return match share {
            Some(share) if share.session_id == target.session && share.port == target.port => {
                let ends = Some(crate::activity::Revocations::share_key(&share.id));
                let cookie = state.previews.cookie_for(Holder::Share(share.id), &target, ends);
                with_cookie(state, &target, request.uri(), SHARE_PARAM, &cookie)
            }
            _ => error_page(
                StatusCode::FORBIDDEN,
                wants_html,
                "This share link was revoked or has expired.",
            ),
        };
    }
    let public = match state.previews.is_public(state, &target).await {
        Ok(public) => public,
        Err(e) => return error_page(e.status, wants_html, &e.message),
    };
    // What the request's credential ends with: an upgraded connection closes then.
    let mut ends = None;
    if !public {
        let holder = match credential(state, request.headers(), &target).await {
            Ok(Some((holder, signal))) => {
                ends = signal;
                Some(holder)
            }
            Ok(None) => None,
            Err(message) => return error_page(StatusCode::UNAUTHORIZED, wants_html, &message),
        };
        match holder {
            Some(Holder::User(user_id)) if user_id == record.owner_id => {}
            Some(Holder::User(_)) => {
                return error_page(
                    StatusCode::FORBIDDEN,
                    wants_html,
                    "This preview belongs to a session you have no access to.",
                );
            }
            // So is a guest: revoking their invite or removing them cuts the next request.
            Some(Holder::Guest(id)) => match state.store.guest(&id).await {
                Ok(Some(guest)) if guest.session_id == target.session => {}
                _ => {
                    return error_page(
                        StatusCode::UNAUTHORIZED,
                        wants_html,
                        "Your access to this session ended.",
                    );
                }
            },
            // A share link is checked on every request: revoking it cuts the next one.
            Some(Holder::Share(id)) => match state.store.share(&id).await {
                Ok(Some(share)) if share.port == target.port => {}
                _ => {
                    return error_page(
                        StatusCode::UNAUTHORIZED,
                        wants_html,
                        "The share link this browser used was revoked or has expired.",
                    );
                }
            },
            None if wants_html => return bounce(state, &target, request.uri()),
            None => {
                return error_page(
                    StatusCode::UNAUTHORIZED,
                    false,
                    "this port is private: send a Flint token in the X-Flint-Token header",
                );
            }
        }
    }
    if !record.state.is_up() {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            wants_html,
            &format!(
                "Session {} is {}: start it again to see its previews.",
                record.name,
                record.state.as_str()
            ),
        );
    }
    state.sessions.touch(&target.session).await;
    proxy::forward(state, &target, peer, request, wants_html, ends).await
}

/// Sets the preview cookie and redirects to the URL without `param`. The location is
/// absolute, on the preview's own host: a path such as `//evil.example/` or `/\evil.example`
/// as a relative location would send the browser to another site.
fn with_cookie(
    state: &AppState,
    target: &Target,
    uri: &http::Uri,
    param: &str,
    cookie: &str,
) -> Response {
    let location = url(state, target, &without_param(uri, param));
    let secure = if state.config.public_origin.is_https() { "; Secure" } else { "" };
    let set_cookie = format!(
        "{}={cookie}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        cookie_name(state),
        COOKIE_TTL.as_secs()
    );
    let mut response = redirect(&location);
    if let Ok(value) = HeaderValue::from_str(&set_cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The signal a credential ends with.
type Ends = std::sync::Arc<tokio_util::sync::CancellationToken>;

/// Who the request's Flint credential is (`X-Flint-Token` or the preview cookie) and the
/// signal it ends with. `Err` for a credential that is present but invalid.
async fn credential(
    state: &AppState,
    headers: &HeaderMap,
    target: &Target,
) -> Result<Option<(Holder, Option<Ends>)>, String> {
    if let Some(value) = headers.get(TOKEN_HEADER) {
        let token = value.to_str().unwrap_or_default().trim();
        let token = token.strip_prefix("Bearer ").unwrap_or(token);
        let found = state.previews.token(state, token).await.map_err(|e| e.message)?;
        return match found {
            Some(facts) => match facts.scope {
                Some(scope) if scope != target.session => {
                    Err("this token is scoped to another session".to_owned())
                }
                _ => Ok(Some((Holder::User(facts.user_id), Some(facts.revoked)))),
            },
            None => Err("the token in X-Flint-Token is not valid".to_owned()),
        };
    }
    // Any valid one of several: a page can add its own cookie of the same name (a script
    // on the preview's host), and the browser sends both.
    let name = cookie_name(state);
    let holder = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
        .find_map(|cookie| state.previews.cookie_holder(cookie, target))
        .map(|(holder, ends)| (holder, ends.map(|key| state.revocations.watch(&key))));
    Ok(holder)
}

/// Sends a browser to the app, which knows who it is, for a ticket.
fn bounce(state: &AppState, target: &Target, uri: &http::Uri) -> Response {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let location = format!(
        "{}/preview/open?session={}&port={}&path={}",
        state.config.public_origin.to_origin_string(),
        target.session,
        target.port,
        encode(path)
    );
    redirect(&location)
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The preview URL of a port (no ticket).
pub fn url(state: &AppState, target: &Target, path: &str) -> String {
    state.config.preview.url(&target.label(), path)
}

/// A session's listening ports as previews: one entry per port (a port open on IPv4 and
/// IPv6 once), sorted.
pub fn describe(
    base: &crate::config::PreviewBase,
    session: &str,
    listeners: &[proto::ports::Listener],
    public: &[u16],
    shares: &[crate::store::Share],
) -> Vec<proto::api::PreviewPort> {
    let mut ports: Vec<&proto::ports::Listener> = listeners.iter().collect();
    ports.sort_by_key(|l| (l.port, l.process.is_none()));
    ports.dedup_by_key(|l| l.port);
    ports
        .into_iter()
        .map(|listener| {
            let target = Target { port: listener.port, session: session.to_owned() };
            proto::api::PreviewPort {
                port: listener.port,
                process: listener.process.clone(),
                url: base.url(&target.label(), "/"),
                open_path: format!("/preview/open?session={session}&port={}", listener.port),
                public: public.contains(&listener.port),
                shares: shares
                    .iter()
                    .filter(|s| s.port == listener.port)
                    .map(|s| proto::api::ShareLink {
                        id: s.id.clone(),
                        url: None,
                        expires_ms: s.expires_ms,
                    })
                    .collect(),
            }
        })
        .collect()
}

/// `GET /preview/open?session=S&port=P&path=/x`: on the app's host, with the app's cookie:
/// mints a ticket and sends the browser to the preview.
#[derive(Deserialize)]
pub struct OpenQuery {
    session: String,
    port: u16,
    path: Option<String>,
}

pub async fn open(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<OpenQuery>,
) -> Response {
    // The app's sign-in cookie, else a guest's (for their one session); what the preview
    // opens ends with it.
    use crate::activity::Revocations;
    let (holder, ends) = match crate::auth::cookie_user(&state, &headers).await {
        Ok(Some(user)) => {
            let web = crate::auth::cookie_web_session(&headers).map(|s| Revocations::web_key(&s));
            (Holder::User(user.id), web)
        }
        Ok(None) => match crate::auth::cookie_guest(&state, &headers).await {
            Ok(Some(guest)) if guest.session_id == query.session => {
                let ends = Some(Revocations::guest_key(&guest.id));
                (Holder::Guest(guest.id), ends)
            }
            Ok(_) => {
                return error_page(
                    StatusCode::UNAUTHORIZED,
                    true,
                    "Sign in to Flint first (use your login link), then open the preview again.",
                );
            }
            Err(e) => return error_page(e.status, true, &e.message),
        },
        Err(e) => return error_page(e.status, true, &e.message),
    };
    let record = match state.sessions.record(&query.session).await {
        Ok(record)
            if matches!(&holder, Holder::User(id) if *id == record.owner_id)
                || matches!(holder, Holder::Guest(_)) =>
        {
            record
        }
        _ => {
            return error_page(
                StatusCode::NOT_FOUND,
                true,
                &format!("There is no session {} of yours.", query.session),
            );
        }
    };
    let target = Target { port: query.port, session: record.info.id };
    let path = query.path.filter(|p| p.starts_with('/')).unwrap_or_else(|| "/".to_owned());
    let ticket = state.previews.ticket_for(holder, &target, ends);
    let separator = if path.contains('?') { '&' } else { '?' };
    redirect(&url(&state, &target, &format!("{path}{separator}{TICKET_PARAM}={ticket}")))
}

fn wants_html(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    accept.contains("text/html") && !accept.starts_with("application/json")
}

/// An error as a page for browsers, `{"error": ...}` for everything else.
pub fn error_page(status: StatusCode, html: bool, message: &str) -> Response {
    if !html {
        return crate::error::AppError::new(status, message).into_response();
    }
    let escaped = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Flint preview</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;\
         padding:0 1rem;color:#222}}h1{{font-size:1.2rem}}</style></head><body>\
         <h1>Flint preview: {} {}</h1><p>{escaped}</p></body></html>",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    );
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

fn query_param(uri: &http::Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| value.to_owned())
    })
}

fn without_param(uri: &http::Uri, name: &str) -> String {
    let rest: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some(name))
        .collect();
    if rest.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{}", uri.path(), rest.join("&"))
    }
}

/// Percent-encodes a path for a query parameter.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_hosts_parse_and_others_do_not() {
        let t = Target::parse("8000-abc234.preview.localhost:8080", DEFAULT_DOMAIN);
        assert_eq!(t, Some(Target { port: 8000, session: "abc234".to_owned() }));
        assert_eq!(
            t.map(|t| t.host(DEFAULT_DOMAIN)).as_deref(),
            Some("8000-abc234.preview.localhost")
        );
        assert!(
            Target::parse("8000-ABC.preview.localhost", DEFAULT_DOMAIN).is_some(),
            "case-insensitive"
        );
        for host in [
            "127.0.0.1:8080",
            "preview.localhost",
            "x.8000-abc.preview.localhost",
            "0-abc.preview.localhost",
            "70000-abc.preview.localhost",
            "8000-.preview.localhost",
            "8000-a_b.preview.localhost",
            "8000-abc.evilpreview.localhost",
            "08000-abc.preview.localhost",
            "+8000-abc.preview.localhost",
            "-8000-abc.preview.localhost",
            " 8000-abc.preview.localhost.",
        ] {
            assert_eq!(Target::parse(host, DEFAULT_DOMAIN), None, "{host}");
        }
    }

    #[test]
    fn a_ticket_works_once_for_its_own_host_only() {
        let previews = Previews::default();
        let target = Target { port: 8000, session: "s1".to_owned() };
        let other = Target { port: 8001, session: "s1".to_owned() };
        let ticket = previews.ticket("u1", &target);
        assert_eq!(previews.redeem(&ticket, &other), None, "another port");
        let ticket = previews.ticket("u1", &target);
        let cookie = previews.redeem(&ticket, &target).expect("a cookie");
        assert_eq!(previews.redeem(&ticket, &target), None, "used up");
        assert_eq!(
            previews.cookie_holder(&cookie, &target),
            Some((Holder::User("u1".to_owned()), None))
        );
        assert_eq!(previews.cookie_holder(&cookie, &other), None);
        // Signed: a changed cookie, or one from another server's key, lets nobody in.
        let forged = cookie.replacen(".u.u1.", ".u.u2.", 1);
        assert_ne!(forged, cookie);
        assert_eq!(previews.cookie_holder(&forged, &target), None);
        assert_eq!(Previews::default().cookie_holder(&cookie, &target), None);
        for junk in ["", ".", "v1", "a.b", "v1.u.u1.s1.8000.1.-.zz"] {
            assert_eq!(previews.cookie_holder(junk, &target), None, "{junk}");
        }
        // The share link's and the guest's keep their kind and what they end with.
        let ends = Some("share:x1".to_owned());
        let shared = previews.cookie_for(Holder::Share("x1".to_owned()), &target, ends.clone());
        assert_eq!(
            previews.cookie_holder(&shared, &target),
            Some((Holder::Share("x1".to_owned()), ends))
        );
        let ticket = previews.ticket("u1", &target);
        previews.forget_session("s1");
        assert_eq!(previews.redeem(&ticket, &target), None, "the session's tickets went");
    }

    #[test]
    fn tickets_in_waiting_are_bounded() {
        let previews = Previews::default();
        let target = Target { port: 8000, session: "s1".to_owned() };
        let first = previews.ticket("u1", &target);
        for _ in 0..access::TICKETS_MAX {
            previews.ticket("u1", &target);
        }
        assert_eq!(previews.redeem(&first, &target), None, "the oldest went first");
        assert!(previews.held_tickets() <= access::TICKETS_MAX);
    }

    #[test]
    fn the_ticket_leaves_the_url_and_paths_are_encoded() {
        let uri: http::Uri = "/a/b?x=1&flint_ticket=abc&y=2".parse().expect("uri");
        assert_eq!(without_param(&uri, TICKET_PARAM), "/a/b?x=1&y=2");
        let uri: http::Uri = "/?flint_ticket=abc".parse().expect("uri");
        assert_eq!(without_param(&uri, TICKET_PARAM), "/");
        assert_eq!(
            query_param(&"/?flint_ticket=t1".parse().expect("uri"), TICKET_PARAM).as_deref(),
            Some("t1")
        );
        assert_eq!(encode("/a b?c=d&e"), "/a%20b%3Fc%3Dd%26e");
    }
}
