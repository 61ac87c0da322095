//! When a certificate expires: its `notAfter`, read from the PEM text
//! (the first certificate of a chain) with a few lines of DER, rather than
//! a crate for all of X.509.

/// The first certificate's `notAfter`, as every command prints times
/// (ISO 8601, UTC: `YYYY-MM-DDTHH:MM:SSZ`).
pub fn not_after(pem: &str) -> Option<String> {
    let body = pem
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)?
        .split("-----END CERTIFICATE-----")
        .next()?;
    let der = base64_decode(body)?;
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version?,
    // serialNumber, signature, issuer, validity SEQUENCE { notBefore,
    // notAfter }, … }, … }
    let (certificate, _) = element(&der, 0x30)?;
    let (mut tbs, _) = element(certificate, 0x30)?;
    if tbs.first() == Some(&0xa0) {
        tbs = element(tbs, 0xa0)?.1;
    }
    let (_, rest) = element(tbs, 0x02)?; // serialNumber
    let (_, rest) = element(rest, 0x30)?; // signature
    let (_, rest) = element(rest, 0x30)?; // issuer
    let (validity, _) = element(rest, 0x30)?;
    let rest = any_element(validity)?.1; // notBefore
    let (tag, value) = (rest.first().copied()?, any_element(rest)?.0);
    let text = std::str::from_utf8(value).ok()?;
    // UTCTime YYMMDDHHMMSSZ (years 1950–2049), GeneralizedTime YYYYMMDDHHMMSSZ.
    let full = match tag {
        0x17 => {
            let yy: u32 = text.get(..2)?.parse().ok()?;
            let century = if yy >= 50 { "19" } else { "20" };
            format!("{century}{text}")
        }
        0x18 => text.to_string(),
        _ => return None,
    };
    if !full.get(..14)?.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let d = |range: std::ops::Range<usize>| full.get(range);
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        d(0..4)?,
        d(4..6)?,
        d(6..8)?,
        d(8..10)?,
        d(10..12)?,
        d(12..14)?
    ))
}

/// The content of the DER element at the start of `data` if its tag is
/// `tag`, and what follows it.
fn element(data: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    (data.first() == Some(&tag)).then_some(())?;
    any_element(data)
}

fn any_element(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let first = *data.get(1)?;
    let (len, start) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let bytes = data.get(2..2 + count)?;
        let len = bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
        (len, 2 + count)
    };
    let end = start.checked_add(len)?;
    Some((data.get(start..end)?, data.get(end..)?))
}

/// Standard base64, whitespace ignored.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b if b.is_ascii_whitespace() => continue,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Self-signed certificates made with `openssl req -x509 -newkey ec
    /// -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=… -days 1` (a
    /// UTCTime) and `-days 36500` (past 2049: a GeneralizedTime);
    /// `openssl x509 -noout -enddate` said what the test expects.
    const UTC_TIME: &str = "-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIUJ+85lo61rcakbI49NrQQXBMBK+wwCgYIKoZIzj0EAwIw
ETEPMA0GA1UEAwwGYS50ZXN0MB4XDTI2MTEyOTEyNTkxNFoXDTI2MTEzMDEyNTkx
NFowETEPMA0GA1UEAwwGYS50ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
03Wjor3g81TVMDB/BG2l3hWR68kpZaO2+QTPuxxVlHO2/5cq3aPvuVDcCUbGxpnf
dyX9S4jRcMI7xj07NgEHtaNTMFEwHQYDVR0OBBYEFESOoo5PVkhNkypG8hqBaVT3
9/P9MB8GA1UdIwQYMBaAFESOoo5PVkhNkypG8hqBaVT39/P9MA8GA1UdEwEB/wQF
MAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAN0b08mc3BUbl6U1RZHQcVC/14NvV5eC
0fIqeIuk0MYeAiBC/MUy/U/PC2UVYgZgKe7aCRb7lh6BYVC3MWZViaj8/A==
-----END CERTIFICATE-----";
    const GENERALIZED_TIME: &str = "-----BEGIN CERTIFICATE-----
MIIBeTCCAR+gAwIBAgIUMnbDbQ0Y7N9FMkkM9+EFYnAdCsQwCgYIKoZIzj0EAwIw
ETEPMA0GA1UEAwwGYi50ZXN0MCAXDTI2MTEyOTEyNTkxNFoYDzIxMjYxMTA1MTI1
OTE0WjARMQ8wDQYDVQQDDAZiLnRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AARoiqvD52Z2nSROajqWJKxjQuQ7uvQuzqCMY3HsjRmnaIXkruJ5Hr3aqSJF/WZS
wKsz5AmEWHIaL7djWIKJe8aoo1MwUTAdBgNVHQ4EFgQUaiWvHaeUhlWqB9P9f3rW
a0IVmPowHwYDVR0jBBgwFoAUaiWvHaeUhlWqB9P9f3rWa0IVmPowDwYDVR0TAQH/
BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEAsXCW6kVwoQDuDAROILlM2KTMrj5c
Sk4inLRFE9opjnwCIB3OUg74CRIY0O3U5Dcp9sOGl9xUHwAImZnFoMeNkg5m
-----END CERTIFICATE-----";

    #[test]
    fn reads_not_after() {
        assert_eq!(not_after(UTC_TIME).as_deref(), Some("2026-11-30T12:59:14Z"));
        assert_eq!(
            not_after(GENERALIZED_TIME).as_deref(),
            Some("2126-11-05T12:59:14Z")
        );
        // The leaf of a chain is the first.
        let chain = format!("{UTC_TIME}\n{GENERALIZED_TIME}\n");
        assert_eq!(not_after(&chain).as_deref(), Some("2026-11-30T12:59:14Z"));
        assert_eq!(not_after("no certificate"), None);
        assert_eq!(not_after(&UTC_TIME.replace("MIIB", "MIIC")), None);
    }

    #[test]
    fn base64_round() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVs\nbG8h").unwrap(), b"hello!");
        assert!(base64_decode("a*b").is_none());
    }
}
