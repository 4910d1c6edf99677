//! A small XML element tree for the few request bodies s3s 0.14.1 has no model for
//! (PutBucketEncryption with `BlockedEncryptionTypes`, UpdateObjectEncryption). Element
//! names are local names (namespaces ignored, as S3 does); DTDs are refused; depth and
//! size are bounded by the caller's body limit and [`MAX_DEPTH`].

use quick_xml::Reader;
use quick_xml::events::Event;

const MAX_DEPTH: usize = 16;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the first child named `name`.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// Whether every child is one of `names` (S3 rejects unknown elements).
    pub fn only(&self, names: &[&str]) -> bool {
        self.children
            .iter()
            .all(|c| names.contains(&c.name.as_str()))
    }
}

/// Parses one document into its root element; `None` if it is not well-formed.
pub fn parse(body: &[u8]) -> Option<Element> {
    let mut reader = Reader::from_reader(body);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                if root.is_some() || stack.len() >= MAX_DEPTH {
                    return None;
                }
                stack.push(Element {
                    name: std::str::from_utf8(e.local_name().as_ref())
                        .ok()?
                        .to_owned(),
                    ..Element::default()
                });
            }
            Event::Empty(e) => {
                if root.is_some() {
                    return None;
                }
                let el = Element {
                    name: std::str::from_utf8(e.local_name().as_ref())
                        .ok()?
                        .to_owned(),
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(e) => {
                let el = stack.pop()?;
                if e.local_name().as_ref() != el.name.as_bytes() {
                    return None;
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let text = t.decode().ok()?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return None,
                }
            }
            Event::GeneralRef(r) => {
                let el = stack.last_mut()?;
                if r.is_char_ref() {
                    el.text.push(r.resolve_char_ref().ok()??);
                } else {
                    let name = r.decode().ok()?;
                    el.text
                        .push_str(quick_xml::escape::resolve_xml_entity(&name)?);
                }
            }
            Event::CData(c) => {
                let el = stack.last_mut()?;
                el.text.push_str(std::str::from_utf8(&c.into_inner()).ok()?);
            }
            Event::DocType(_) => return None,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return None;
    }
    root
}

/// Escapes text for an element body.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_elements_with_namespaces_and_entities() {
        let doc = br#"<?xml version="1.0"?>
<ObjectEncryption xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <SSE-KMS><KMSKeyArn>a&amp;b&#x41;</KMSKeyArn><BucketKeyEnabled/></SSE-KMS>
</ObjectEncryption>"#;
        let root = parse(doc).expect("well-formed");
        assert_eq!(root.name, "ObjectEncryption");
        let kms = root.child("SSE-KMS").expect("child");
        assert_eq!(kms.text_of("KMSKeyArn"), Some("a&bA"));
        assert_eq!(kms.text_of("BucketKeyEnabled"), Some(""));
        assert!(kms.only(&["KMSKeyArn", "BucketKeyEnabled"]));
        assert!(!root.only(&["Other"]));
    }

    #[test]
    fn rejects_what_is_not_one_well_formed_document() {
        for bad in [
            &b"<a><b></a>"[..],
            b"<a>",
            b"<a></a><b></b>",
            b"text<a></a>",
            b"<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
            b"<a>&unknown;</a>",
            b"",
        ] {
            assert!(parse(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(parse(deep.as_bytes()).is_none());
    }
}
