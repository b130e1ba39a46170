//! Small HTTP plumbing shared by the Admin API, the proxy and the test backends: an accept
//! loop on hyper 1 with graceful shutdown, and response builders.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The body type every stand-in server answers with.
pub(crate) type Body = Full<Bytes>;

/// Returned by a handler to close the connection without any response (fault injection, or a
/// backend that "hangs up").
#[derive(Debug)]
pub(crate) struct HangUp;

impl std::fmt::Display for HangUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for HangUp {}

/// Serves HTTP/1.1 on `listener` until `shutdown` is cancelled. Each connection also stops when
/// `shutdown` fires; in-flight requests are finished first (graceful shutdown), unless `abort`
/// is set, in which case connections are dropped at once (a backend going down).
pub(crate) fn spawn_server<H, Fut>(
    listener: TcpListener,
    shutdown: CancellationToken,
    abort_connections: bool,
    handler: H,
) -> tokio::task::JoinHandle<()>
where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Body>, HangUp>> + Send + 'static,
{
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, peer)) = accepted else {
                // Too many open files and the like: back off a little instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let handler = Arc::clone(&handler);
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let handler = Arc::clone(&handler);
                    async move { handler(req, peer).await }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    () = shutdown.cancelled() => {
                        if !abort_connections {
                            conn.as_mut().graceful_shutdown();
                            let _ = tokio::time::timeout(
                                std::time::Duration::from_secs(5),
                                conn.as_mut(),
                            )
                            .await;
                        }
                    }
                }
            });
        }
    })
}

/// Reads a whole request body, refusing more than `limit` bytes (`Err(true)` = too large,
/// `Err(false)` = the client went away).
pub(crate) async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, bool> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => Err(err.is::<http_body_util::LengthLimitError>()),
    }
}

/// A JSON response with Kong's content type.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response<Body> {
    let text = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// A response with a given content type and raw body.
pub(crate) fn raw(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}

/// An empty response (204, 304).
pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

/// Sets nginx's reason phrase where Kong's differs from the standard one.
pub(crate) fn nginx_reason(resp: &mut Response<Body>) {
    let phrase: Option<&'static [u8]> = match resp.status().as_u16() {
        405 => Some(b"Not Allowed"),
        503 => Some(b"Service Temporarily Unavailable"),
        _ => None,
    };
    if let Some(phrase) = phrase {
        resp.extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(phrase));
    }
}

/// nginx's HTML error page, as Kong's nginx answers for 413/415.
pub(crate) fn nginx_html(status: StatusCode) -> Response<Body> {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let page = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>openresty</center>\r\n</body>\r\n</html>\r\n"
    );
    raw(status, "text/html", page)
}

/// Binds a loopback (or given) address.
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
