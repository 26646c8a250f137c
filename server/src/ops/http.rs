//! The HTTP side of the operator endpoints (`/metrics` and the AdminServer): a listener bound at
//! start-up, so that a port in use stops start-up rather than a thread later, and one thread answering
//! requests in turn, each through the endpoint's own function from request to reply. A reply takes
//! microseconds and scrapers and probes come every few seconds, so one thread is plenty.

/// What an endpoint sees of a request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub get: bool,
    pub path: &'a str,
    /// After the `?`, empty if none.
    pub query: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    pub fn ok(content_type: &'static str, body: String) -> Reply {
        Reply { status: 200, content_type, body }
    }

    pub fn not_found() -> Reply {
        Reply { status: 404, content_type: "text/plain", body: "Not Found\n".into() }
    }

    pub fn method_not_allowed() -> Reply {
        Reply { status: 405, content_type: "text/plain", body: "HTTP method not allowed\n".into() }
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
        for request in self.server.incoming_requests() {
            let url = request.url();
            let (path, query) = url.split_once('?').unwrap_or((url, ""));
            let reply = handle(Request { get: *request.method() == tiny_http::Method::Get, path, query });
            let header = tiny_http::Header::from_bytes("Content-Type", reply.content_type).expect("a valid header");
            let response =
                tiny_http::Response::from_string(reply.body).with_status_code(reply.status).with_header(header);
            if let Err(e) = request.respond(response) {
                tracing::debug!("an HTTP client went away before its answer: {e}");
            }
        }
    }
}
