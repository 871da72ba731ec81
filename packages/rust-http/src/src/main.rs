//! rust-http: a small HTTP/1.1 server on the standard library, one thread per connection.
//!
//! - `GET /`: a greeting and the number of requests served;
//! - `GET /healthz`: `ok`;
//! - anything else: 404; methods other than GET and HEAD: 405.
//!
//! Listens on `0.0.0.0:$PORT` (default 8081). Keep-alive is honoured for HTTP/1.1.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static SERVED: AtomicU64 = AtomicU64::new(0);

/// The request line and whether the client wants the connection kept open.
struct Request {
    method: String,
    path: String,
    keep_alive: bool,
}

/// Reads one request head; `None` at end of stream or on a malformed request.
fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path, version) = (parts.next()?, parts.next()?, parts.next()?);
    let mut keep_alive = version == "HTTP/1.1";
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("connection")
        {
            keep_alive = !value.trim().eq_ignore_ascii_case("close");
        }
    }
    Some(Request {
        method: method.to_string(),
        path: path.to_string(),
        keep_alive,
    })
}

fn respond(stream: &mut TcpStream, req: &Request) -> std::io::Result<()> {
    let (status, body) = match (req.method.as_str(), req.path.as_str()) {
        ("GET" | "HEAD", "/") => {
            let n = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
            (
                "200 OK",
                format!(
                    "hello from rust-http on Kiln (request {n}, {} threads available)\n",
                    std::thread::available_parallelism().map_or(1, |n| n.get())
                ),
            )
        }
        ("GET" | "HEAD", "/healthz") => ("200 OK", "ok\n".to_string()),
        ("GET" | "HEAD", _) => ("404 Not Found", "not found\n".to_string()),
        _ => ("405 Method Not Allowed", "only GET and HEAD\n".to_string()),
    };
    let connection = if req.keep_alive { "keep-alive" } else { "close" };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
        body.len()
    )?;
    if req.method != "HEAD" {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

fn serve(stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader) {
        if respond(&mut writer, &req).is_err() || !req.keep_alive {
            break;
        }
    }
}

fn main() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8081".into());
    let listener = match TcpListener::bind(format!("0.0.0.0:{port}")) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("rust-http: cannot listen on port {port}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("rust-http listening on 0.0.0.0:{port}");
    for stream in listener.incoming() {
        match stream {
            Ok(s) => {
                std::thread::spawn(move || serve(s));
            }
            Err(e) => eprintln!("rust-http: accept: {e}"),
        }
    }
}
