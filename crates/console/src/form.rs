//! Reading what a browser sends: URL-encoded forms and query strings.

use http::{Request, Response, StatusCode};

use coffer_api::Body;

/// Largest form read (a bucket policy is at most 20 KiB; a key policy 32 KiB).
const MAX_FORM: usize = 256 * 1024;

/// `application/x-www-form-urlencoded` decoding of one name or value.
pub fn decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

/// Percent-decoding alone (`+` stays): what IAM does to the policy documents it returns.
pub fn decode_percent(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The pairs of a query string or form body, in order.
pub fn parse(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// The first value of a field.
pub fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Reads a form body, or the page refusing it.
pub async fn read(req: Request<Body>) -> Result<Vec<(String, String)>, Response<Body>> {
    match coffer_api::read_body(req.into_body(), MAX_FORM).await {
        Ok(b) => Ok(parse(&String::from_utf8_lossy(&b))),
        Err(_) => {
            let mut r = Response::new(coffer_api::full("The form is too large or was cut off."));
            *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            Err(r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent() {
        let f = parse("a=1+2&b=%2Fx%3D&c");
        assert_eq!(field(&f, "a"), Some("1 2"));
        assert_eq!(field(&f, "b"), Some("/x="));
        assert_eq!(field(&f, "c"), Some(""));
        assert_eq!(field(&f, "d"), None);
    }
}
