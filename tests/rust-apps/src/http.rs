//! `httpserve PORT`: an HTTP/1.1 server on std's TcpListener, a thread per connection,
//! keep-alive; every path answers a line naming the request, `GET /exit` answers and ends
//! the program with status 0.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

pub fn serve(port: String) -> Result<(), String> {
    let listener = TcpListener::bind(format!("0.0.0.0:{port}")).map_err(|e| format!("bind: {e}"))?;
    println!("listening on {}", listener.local_addr().map_err(|e| e.to_string())?);
    for stream in listener.incoming() {
        let stream = stream.map_err(|e| format!("accept: {e}"))?;
        thread::spawn(move || {
            if let Err(e) = connection(stream) {
                eprintln!("connection: {e}");
            }
        });
    }
    Ok(())
}

fn connection(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        // Headers up to the blank line.
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                break;
            }
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("");
        let path = parts.next().unwrap_or("");
        let body = if path == "/exit" { "bye\n".to_string() } else { format!("hello from rust: {method} {path}\n") };
        write!(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}", body.len())?;
        out.flush()?;
        if path == "/exit" {
            println!("httpserve: done");
            std::process::exit(0);
        }
    }
}
