//! Prometheus metrics, served at `/metrics` to loopback clients only.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use proto::api::SessionState;

use crate::app::AppState;
use crate::error::AppError;

/// Label of the sessions gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// Lifecycle state: creating, running, stopping, stopped, failed.
    pub state: String,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    /// Sessions by lifecycle state.
    pub sessions: Family<StateLabel, Gauge>,
    /// Seconds from create to running.
    pub session_start_seconds: Histogram,
    /// Open websocket clients.
    pub websocket_clients: Gauge,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("flint");
        let sessions = Family::<StateLabel, Gauge>::default();
        registry.register("sessions", "Sessions by lifecycle state", sessions.clone());
        // 10 ms .. ~80 s: a warm pool claim to a cold image build.
        let session_start_seconds = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.01, 2.0, 14),
        );
        registry.register(
            "session_start_seconds",
            "Time from create to a running session",
            session_start_seconds.clone(),
        );
        let websocket_clients = Gauge::default();
        registry.register("websocket_clients", "Open websocket clients", websocket_clients.clone());
        for state in SessionState::ALL {
            sessions.get_or_create(&StateLabel { state: state.as_str().to_owned() }).set(0);
        }
        Arc::new(Metrics { registry, sessions, session_start_seconds, websocket_clients })
    }

    fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// `GET /metrics`, loopback only: it is for the host's own scraper, not the internet.
pub async fn metrics(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if !peer.ip().is_loopback() {
        return AppError::forbidden("metrics are served to loopback clients only").into_response();
    }
    // Sessions by state come from the store at scrape time: always exact, no bookkeeping.
    match state.store.count_sessions_by_state().await {
        Ok(counts) => {
            for name in SessionState::ALL.map(SessionState::as_str) {
                let n = counts.iter().find(|(s, _)| s == name).map(|(_, n)| *n).unwrap_or(0);
                state.metrics.sessions.get_or_create(&StateLabel { state: name.to_owned() }).set(n);
            }
        }
        Err(e) => return e.into_response(),
    }
    match state.metrics.encode() {
        Ok(text) => {
            let mut response = (StatusCode::OK, text).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        Err(e) => AppError::internal(format!("encoding metrics: {e}")).into_response(),
    }
}
