//! Reading one HTTP/1.1 answer, for unitgen's two small clients (fleet's
//! API, the Docker engine's), which send one request a connection
//! (`Connection: close`): the body framed by Content-Length, chunked, or
//! the end of the connection. Bounded throughout, so that a broken or
//! hostile server cannot make unitgen allocate without end.
//!
//! Errors are `io::Error`s: `InvalidData` for an answer that is not HTTP
//! as it must be (its detail quotes the server's text as messages do),
//! `UnexpectedEof` for a connection closed before the answer ended, and
//! the connection's own errors (a timeout) as they come. Each client words
//! them for its users.

use std::io::{self, BufRead, Read};

/// A server's answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// The status line's text after the code (`Not Found`).
    pub reason: String,
    pub body: Vec<u8>,
}

/// The largest body read: fleet's largest answer is a page of 100 units,
/// the engine's a list of the containers of one instance.
const MAX_BODY: usize = 64 << 20;

/// The longest line (status, header, chunk size) read.
const MAX_LINE: u64 = 64 * 1024;

/// The answer to a request of `method` (a HEAD's has no body), read from
/// `reader` up to its end (trailers of a chunked body read and dropped).
pub fn read_response(reader: &mut impl BufRead, method: &str) -> io::Result<Response> {
    let status_line = read_line(reader)?;
    let bad_status = || invalid(format!("a status line `{}`", shown(&status_line)));
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(bad_status());
    };
    let status: u16 = (code.parse().ok())
        .filter(|_| version.starts_with("HTTP/1."))
        .ok_or_else(bad_status)?;
    let reason = parts.next().unwrap_or_default().to_owned();

    let mut content_length = None;
    let mut chunked = false;
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = (line.split_once(':'))
            .ok_or_else(|| invalid(format!("a header line `{}`", shown(&line))))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(value.parse::<usize>().map_err(|_| {
                invalid(format!(
                    "a Content-Length `{}` that is not a number",
                    shown(value)
                ))
            })?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked =
                (value.to_ascii_lowercase().split(',')).any(|coding| coding.trim() == "chunked");
        }
    }

    let mut body = Vec::new();
    if method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status) {
        // No body by definition (RFC 9112 §6.3).
    } else if chunked {
        read_chunked(reader, &mut body)?;
    } else if let Some(length) = content_length {
        if length > MAX_BODY {
            return Err(too_large());
        }
        body.resize(length, 0);
        read_exact(reader, &mut body)?;
    } else {
        // Neither: the body is all the server sends before it closes.
        reader.take(MAX_BODY as u64 + 1).read_to_end(&mut body)?;
        if body.len() > MAX_BODY {
            return Err(too_large());
        }
    }
    Ok(Response {
        status,
        reason,
        body,
    })
}

/// A chunked body's data: each chunk is its size in hex (maybe with
/// extensions after `;`), CRLF, the data, CRLF; a size of 0 ends it, and
/// trailers up to a blank line follow.
fn read_chunked(reader: &mut impl BufRead, body: &mut Vec<u8>) -> io::Result<()> {
    loop {
        let line = read_line(reader)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid(format!("a chunk size `{}` that is not hex", shown(&line))))?;
        if size == 0 {
            while !read_line(reader)?.is_empty() {}
            return Ok(());
        }
        let start = body.len();
        if size > MAX_BODY - start {
            return Err(too_large());
        }
        body.resize(start + size, 0);
        read_exact(reader, &mut body[start..])?;
        if !read_line(reader)?.is_empty() {
            return Err(invalid("a chunk not ended by CRLF"));
        }
    }
}

/// One line, without its CRLF (or LF).
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    reader.take(MAX_LINE).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(closed());
    }
    if !line.ends_with(b"\n") {
        return Err(invalid(if line.len() as u64 == MAX_LINE {
            "a line longer than 64 KiB"
        } else {
            "a line cut short by the end of the connection"
        }));
    }
    let line = String::from_utf8(line).map_err(|_| invalid("a line that is not UTF-8 text"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// `buf` filled, or the connection's end said as [`closed`].
fn read_exact(reader: &mut impl BufRead, buf: &mut [u8]) -> io::Result<()> {
    reader.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => closed(),
        _ => e,
    })
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the connection was closed before the answer ended",
    )
}

fn too_large() -> io::Error {
    invalid(format!("a body larger than {} MiB", MAX_BODY >> 20))
}

fn invalid(detail: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, detail.into())
}

/// The server's text, as a message quotes it.
fn shown(text: &str) -> String {
    crate::diagnostic::shown(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(answer: &[u8], method: &str) -> io::Result<Response> {
        read_response(&mut io::Cursor::new(answer), method)
    }

    #[test]
    fn a_body_of_its_content_length_is_read_and_no_more() {
        let r = read(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}trailing",
            "GET",
        )
        .unwrap();
        assert_eq!(
            (r.status, r.reason.as_str(), r.body.as_slice()),
            (404, "Not Found", &b"{}"[..])
        );
    }

    #[test]
    fn a_chunked_body_is_put_together_past_extensions_and_trailers() {
        // A chunk's data may hold CRLF; an extension after `;` is ignored;
        // trailers after the last chunk are read and dropped.
        let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n\
                       5\r\n[{\"a\"\r\n9;ext=1\r\n:\"x\r\ny\"}]\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let r = read(answer, "GET").unwrap();
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"[{\"a\":\"x\r\ny\"}]"[..])
        );
    }

    #[test]
    fn without_a_length_the_body_is_all_until_the_connection_closes() {
        let r = read(b"HTTP/1.0 200 OK\r\n\r\nabc", "GET").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abc"[..]));
    }

    #[test]
    fn answers_that_have_no_body_are_not_waited_on() {
        for (answer, method) in [
            (&b"HTTP/1.1 204 No Content\r\n\r\nnext"[..], "PUT"),
            (
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 4\r\n\r\n",
                "GET",
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", "HEAD"),
        ] {
            assert!(read(answer, method).unwrap().body.is_empty(), "{answer:?}");
        }
    }

    #[test]
    fn a_broken_answer_is_an_error_that_says_why_not_a_guess() {
        for (answer, why) in [
            (
                &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
                "a status line `SSH-2.0-OpenSSH`",
            ),
            (
                b"HTTP/1.1 abc OK\r\n\r\n",
                "a status line `HTTP/1.1 abc OK`",
            ),
            (
                b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
                "a header line `no colon`",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: nine\r\n\r\n",
                "a Content-Length `nine` that is not a number",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "a chunk size `zz` that is not hex",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]x\r\n",
                "a chunk not ended by CRLF",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Len",
                "a line cut short by the end of the connection",
            ),
            (
                b"HTTP/1.1 200 \xff\r\n\r\n",
                "a line that is not UTF-8 text",
            ),
            // What a server sends is quoted as text, never obeyed.
            (
                b"HTTP/1.1 200 OK\r\nX\x1b[2J\r\n\r\n",
                "a header line `X\\u{1b}[2J`",
            ),
        ] {
            let error = read(answer, "GET").unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{answer:?}");
            assert_eq!(error.to_string(), why);
        }
    }

    #[test]
    fn too_large_a_body_or_line_is_refused_before_it_is_read() {
        for answer in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
        ] {
            let error = read(answer, "GET").unwrap_err();
            assert_eq!(error.to_string(), "a body larger than 64 MiB", "{answer:?}");
        }
        let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long.resize(200_000, b'a');
        assert_eq!(
            read(&long, "GET").unwrap_err().to_string(),
            "a line longer than 64 KiB"
        );
    }

    #[test]
    fn an_answer_cut_short_is_a_closed_connection() {
        for answer in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n[]",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n",
        ] {
            let error = read(answer, "GET").unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{answer:?}");
            assert_eq!(
                error.to_string(),
                "the connection was closed before the answer ended"
            );
        }
    }
}
