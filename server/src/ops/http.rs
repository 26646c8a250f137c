//! The HTTP side of the operator endpoints (`/metrics` and the AdminServer): a listener bound at
//! start-up, so that a port in use stops start-up rather than a thread later, and one thread answering
//! requests in turn, each through the endpoint's own function from request to reply. A reply takes
//! microseconds and scrapers and probes come every few seconds, so one thread is plenty (a snapshot
//! download or a restore upload holds it for as long as the transfer takes, as ZooKeeper's do).

use std::io::Read;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Other,
}

/// What an endpoint sees of a request.
pub struct Request<'a> {
    pub method: Method,
    pub path: &'a str,
    /// After the `?`, empty if none.
    pub query: &'a str,
    /// The `Authorization` header's value.
    pub authorization: Option<&'a str>,
    pub remote: Option<IpAddr>,
    /// The request's body, read as the endpoint needs it.
    pub body: &'a mut dyn Read,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Text(String),
    /// A file streamed as it is read (a snapshot).
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Reply {
    pub fn ok(content_type: &'static str, body: String) -> Reply {
        Reply::with_status(200, content_type, body)
    }

    pub fn with_status(status: u16, content_type: &'static str, body: String) -> Reply {
        Reply { status, content_type, headers: Vec::new(), body: Body::Text(body) }
    }

    pub fn not_found() -> Reply {
        Reply::with_status(404, "text/plain", "Not Found\n".into())
    }

    pub fn method_not_allowed() -> Reply {
        Reply::with_status(405, "text/plain", "HTTP method not allowed\n".into())
    }

    pub fn header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }
}

pub struct HttpEndpoint {
    server: tiny_http::Server,
}

impl HttpEndpoint {
    pub fn bind(host: &str, port: u16) -> std::io::Result<HttpEndpoint> {
        let server = tiny_http::Server::http((host, port)).map_err(std::io::Error::other)?;
        Ok(HttpEndpoint { server })
    }

    /// The address bound (the OS's choice of port when asked for 0), for the log.
    pub fn local_addr(&self) -> String {
        self.server.server_addr().to_ip().map_or_else(|| "?".into(), |a| a.to_string())
    }

    /// Answers requests with `handle` until the process ends.
    pub fn serve(self, handle: impl Fn(Request<'_>) -> Reply) {
        for mut request in self.server.incoming_requests() {
            let url = request.url().to_owned();
            let (path, query) = url.split_once('?').unwrap_or((&url, ""));
            let method = match request.method() {
                tiny_http::Method::Get => Method::Get,
                tiny_http::Method::Post => Method::Post,
                _ => Method::Other,
            };
            let authorization =
                request.headers().iter().find(|h| h.field.equiv("Authorization")).map(|h| h.value.as_str().to_owned());
            let remote = request.remote_addr().map(|a| a.ip());
            let reply = handle(Request {
                method,
                path,
                query,
                authorization: authorization.as_deref(),
                remote,
                body: request.as_reader(),
            });
            let mut headers = vec![header("Content-Type", reply.content_type)];
            headers.extend(reply.headers.iter().map(|(name, value)| header(name, value)));
            let sent = match reply.body {
                Body::Text(text) => {
                    request.respond(with_headers(tiny_http::Response::from_string(text), reply.status, headers))
                }
                Body::File(path) => match std::fs::File::open(&path) {
                    Ok(file) => {
                        request.respond(with_headers(tiny_http::Response::from_file(file), reply.status, headers))
                    }
                    Err(e) => {
                        tracing::warn!("cannot open {} to send it: {e}", path.display());
                        request.respond(tiny_http::Response::from_string("").with_status_code(500))
                    }
                },
            };
            if let Err(e) = sent {
                tracing::debug!("an HTTP client went away before its answer: {e}");
            }
        }
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name, value).expect("a valid header")
}

fn with_headers<R: Read>(
    mut response: tiny_http::Response<R>,
    status: u16,
    headers: Vec<tiny_http::Header>,
) -> tiny_http::Response<R> {
    response = response.with_status_code(status);
    for header in headers {
        response.add_header(header);
    }
    response
}
