//! `automerge:` URLs, as the JS automerge-repo writes them (`AutomergeUrl.ts`).
//!
//! Forms: `automerge:<docId>` names a document; `automerge:<docId>#<head>|<head>` names it
//! at the given heads, each head being the bs58check text of a 32-byte change hash. An empty
//! heads section (`automerge:<docId>#`) is kept as an empty list, as JS does, so that every
//! URL prints back exactly as it was read.

use std::fmt;
use std::str::FromStr;

use super::bs58check::{decode_check, encode_check};
use super::{DocumentId, DocumentIdError};

/// The scheme prefix of every automerge URL.
const PREFIX: &str = "automerge:";

/// A document, optionally at a fixed set of heads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AutomergeUrl {
    /// The document the URL names.
    pub document_id: DocumentId,
    /// The change hashes after `#`, in URL order; `None` when the URL has no `#`.
    pub heads: Option<Vec<[u8; 32]>>,
}

/// Why a string is not an automerge URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The string does not start with `automerge:`.
    #[error("an automerge URL starts with `automerge:`")]
    MissingPrefix,
    /// The part between the prefix and `#` is not a document id.
    #[error("bad document id in URL: {0}")]
    BadDocumentId(#[source] DocumentIdError),
    /// A head is not the bs58check text of a 32-byte change hash.
    #[error("bad head number {index} in URL: {source}")]
    BadHead {
        /// The position of the head in the `|`-separated list, from 0.
        index: usize,
        /// What is wrong with it.
        source: DocumentIdError,
    },
    /// The URL has more than one `#`, which JS also refuses.
    #[error("an automerge URL has at most one `#` heads section")]
    MultipleHeadSections,
}

impl From<DocumentId> for AutomergeUrl {
    fn from(document_id: DocumentId) -> Self {
        Self {
            document_id,
            heads: None,
        }
    }
}

impl fmt::Display for AutomergeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.document_id)?;
        if let Some(heads) = &self.heads {
            f.write_str("#")?;
            for (i, head) in heads.iter().enumerate() {
                if i > 0 {
                    f.write_str("|")?;
                }
                f.write_str(&encode_check(head))?;
            }
        }
        Ok(())
    }
}

impl FromStr for AutomergeUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix(PREFIX).ok_or(UrlError::MissingPrefix)?;
        let mut sections = rest.split('#');
        let id_text = sections.next().unwrap_or_default();
        let heads_text = sections.next();
        if sections.next().is_some() {
            return Err(UrlError::MultipleHeadSections);
        }
        let document_id = id_text.parse().map_err(UrlError::BadDocumentId)?;
        let heads = match heads_text {
            None => None,
            Some("") => Some(Vec::new()),
            Some(text) => Some(
                text.split('|')
                    .enumerate()
                    .map(|(index, head)| {
                        decode_check::<32>(head)
                            .map_err(|source| UrlError::BadHead { index, source })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok(Self { document_id, heads })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const JS_ID: &str = "4NMNnkMhL8jXrdJ9jamS58PAVdXu";

    #[test]
    fn plain_url_round_trips() {
        let text = format!("automerge:{JS_ID}");
        let url: AutomergeUrl = text.parse().unwrap();
        assert_eq!(url.document_id.to_string(), JS_ID);
        assert_eq!(url.heads, None);
        assert_eq!(url.to_string(), text);
        assert_eq!(url.document_id.to_url(), url);
    }

    #[test]
    fn url_with_heads_round_trips() {
        let a = [0x11u8; 32];
        let b = [0xeeu8; 32];
        let text = format!(
            "automerge:{JS_ID}#{}|{}",
            encode_check(&a),
            encode_check(&b)
        );
        let url: AutomergeUrl = text.parse().unwrap();
        assert_eq!(url.heads, Some(vec![a, b]));
        assert_eq!(url.to_string(), text);

        let one = format!("automerge:{JS_ID}#{}", encode_check(&b));
        let url: AutomergeUrl = one.parse().unwrap();
        assert_eq!(url.heads, Some(vec![b]));
        assert_eq!(url.to_string(), one);
    }

    #[test]
    fn empty_heads_section_is_an_empty_list() {
        let text = format!("automerge:{JS_ID}#");
        let url: AutomergeUrl = text.parse().unwrap();
        assert_eq!(url.heads, Some(vec![]));
        assert_eq!(url.to_string(), text);
    }

    #[test]
    fn rejects_bad_urls() {
        assert_eq!(JS_ID.parse::<AutomergeUrl>(), Err(UrlError::MissingPrefix));
        assert!(matches!(
            "automerge:nope".parse::<AutomergeUrl>(),
            Err(UrlError::BadDocumentId(_))
        ));
        assert_eq!(
            format!("automerge:{JS_ID}##").parse::<AutomergeUrl>(),
            Err(UrlError::MultipleHeadSections)
        );
        // A document id (16 bytes) where a head (32 bytes) belongs.
        assert_eq!(
            format!("automerge:{JS_ID}#{}|{JS_ID}", encode_check(&[1u8; 32]))
                .parse::<AutomergeUrl>(),
            Err(UrlError::BadHead {
                index: 1,
                source: DocumentIdError::WrongLength {
                    expected: 32,
                    actual: 16
                }
            })
        );
        assert!(matches!(
            format!("automerge:{JS_ID}#a||b").parse::<AutomergeUrl>(),
            Err(UrlError::BadHead { index: 0, .. })
        ));
    }
}
