//! A structural scanner over JSON text that finds where values begin and end without building them.
//!
//! simd-json parses a record into a tape but forgets byte positions. Two jobs need them: splitting an
//! envelope (`{"Records":[...]}`, a bare array, a pretty-printed document) into records whose `raw` is the
//! exact original bytes, and copying a record's unmapped top-level members into `attrs` verbatim, in their
//! original order, without re-serializing. The scanner trusts nothing: on malformed text it returns
//! [`ScanError`] with the byte offset, never panics.
//!
//! It lives here, below the normalizers (envelopes, `attrs`), the rules (attribute columns read from
//! `attrs`) and the file reader (document splitting), which all use it.

use std::ops::Range;

/// Malformed or truncated JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    /// Byte offset where scanning stopped.
    pub at: usize,
    /// What was expected there.
    pub expected: &'static str,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "expected {} at byte {}", self.expected, self.at)
    }
}

/// One `"key": value` member of an object: the key's text without quotes (escapes kept) and the value's span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Key span, inside the quotes.
    pub key: Range<usize>,
    /// Value span, exactly the value's text.
    pub value: Range<usize>,
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t') {
        i += 1;
    }
    i
}

fn err(at: usize, expected: &'static str) -> ScanError {
    ScanError { at, expected }
}

/// End (exclusive) of the string whose opening quote is at `i`.
fn skip_string(b: &[u8], i: usize) -> Result<usize, ScanError> {
    let mut j = i + 1;
    // Strings are most of a JSON text: jump between quotes and backslashes with memchr.
    while let Some(k) = b.get(j..).and_then(|rest| memchr::memchr2(b'"', b'\\', rest)) {
        let at = j + k;
        if b[at] == b'"' {
            return Ok(at + 1);
        }
        j = at + 2;
    }
    Err(err(i, "closing quote"))
}

/// End (exclusive) of the value starting at `i` (no leading whitespace).
pub fn skip_value(b: &[u8], i: usize) -> Result<usize, ScanError> {
    match b.get(i) {
        None => Err(err(i, "a value")),
        Some(b'"') => skip_string(b, i),
        Some(b'{') | Some(b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            Err(err(i, "closing bracket"))
        }
        Some(_) => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                j += 1;
            }
            if j == i { Err(err(i, "a value")) } else { Ok(j) }
        }
    }
}

/// The members of the object that starts at the first non-blank byte of `b`.
pub fn object_members(b: &[u8]) -> Result<Vec<Member>, ScanError> {
    members(b).collect()
}

/// The members of the object that starts at the first non-blank byte of `b`, one at a time: no
/// allocation, and a caller that has what it needs stops scanning. Each member comes before any error in
/// the text after it (as a streaming parser reads it); after an error, nothing more.
pub fn members(b: &[u8]) -> Members<'_> {
    Members { b, at: MemberState::Start }
}

/// Iterator of [`members`].
#[derive(Debug, Clone)]
pub struct Members<'b> {
    b: &'b [u8],
    at: MemberState,
}

#[derive(Debug, Clone, Copy)]
enum MemberState {
    Start,
    /// Just after a member's value: a `,` or the closing `}` comes next.
    AfterValue(usize),
    Done,
}

impl Members<'_> {
    fn next_member(&mut self) -> Result<Option<Member>, ScanError> {
        let b = self.b;
        let mut i = match self.at {
            MemberState::Done => return Ok(None),
            // The separator is checked only now: a member is yielded before whatever malformation follows.
            MemberState::AfterValue(i) => match b.get(i) {
                Some(b',') => skip_ws(b, i + 1),
                Some(b'}') => {
                    self.at = MemberState::Done;
                    return Ok(None);
                }
                _ => return Err(err(i, "',' or '}'")),
            },
            MemberState::Start => {
                let start = skip_ws(b, 0);
                if b.get(start) != Some(&b'{') {
                    return Err(err(start, "'{'"));
                }
                let i = skip_ws(b, start + 1);
                if b.get(i) == Some(&b'}') {
                    self.at = MemberState::Done;
                    return Ok(None);
                }
                i
            }
        };
        if b.get(i) != Some(&b'"') {
            return Err(err(i, "a quoted key"));
        }
        let key_end = skip_string(b, i)?;
        let key = i + 1..key_end - 1;
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return Err(err(i, "':'"));
        }
        i = skip_ws(b, i + 1);
        let value_end = skip_value(b, i)?;
        self.at = MemberState::AfterValue(skip_ws(b, value_end));
        Ok(Some(Member { key, value: i..value_end }))
    }
}

impl Iterator for Members<'_> {
    type Item = Result<Member, ScanError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.next_member();
        if item.is_err() {
            self.at = MemberState::Done;
        }
        item.transpose()
    }
}

/// The element spans of the array that starts at `at` (after blanks).
pub fn array_elements(b: &[u8], at: usize) -> Result<Vec<Range<usize>>, ScanError> {
    let mut out = Vec::new();
    let start = skip_ws(b, at);
    if b.get(start) != Some(&b'[') {
        return Err(err(start, "'['"));
    }
    let mut i = skip_ws(b, start + 1);
    if b.get(i) == Some(&b']') {
        return Ok(out);
    }
    loop {
        let end = skip_value(b, i)?;
        out.push(i..end);
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b']') => return Ok(out),
            _ => return Err(err(i, "',' or ']'")),
        }
    }
}

/// The spans of the top-level values in `b`, one after another, separated by blanks (a JSON text
/// sequence, as a pretty-printed file of several objects).
pub fn top_level_values(b: &[u8]) -> Result<Vec<Range<usize>>, ScanError> {
    let mut out = Vec::new();
    let mut i = skip_ws(b, 0);
    while i < b.len() {
        let end = skip_value(b, i)?;
        out.push(i..end);
        i = skip_ws(b, end);
    }
    Ok(out)
}

/// Whether `b` is exactly one complete JSON value (blanks around it allowed), judged structurally.
pub fn is_single_value(b: &[u8]) -> bool {
    let i = skip_ws(b, 0);
    match skip_value(b, i) {
        Ok(end) => skip_ws(b, end) == b.len(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_keep_exact_spans() {
        let text = br#" { "a" : 1, "b":{"x":[1,"]}"]}, "c\"q":"s" } "#;
        let members = object_members(text).unwrap();
        let got: Vec<(&[u8], &[u8])> = members.iter().map(|m| (&text[m.key.clone()], &text[m.value.clone()])).collect();
        assert_eq!(
            got,
            vec![(&b"a"[..], &b"1"[..]), (&b"b"[..], &br#"{"x":[1,"]}"]}"#[..]), (&br#"c\"q"#[..], &br#""s""#[..])]
        );
    }

    #[test]
    fn members_come_before_the_malformation_after_them() {
        let got: Vec<Result<Member, ScanError>> = members(br#"{"a":"x" "o":1}"#).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], Ok(Member { key: 2..3, value: 5..8 }));
        assert!(got[1].is_err());
        assert!(object_members(br#"{"a":"x" "o":1}"#).is_err());
        assert_eq!(members(b" { } ").count(), 0);
    }

    #[test]
    fn arrays_and_sequences_split() {
        let text = b"[ {\"a\":1} ,\n {\"b\":[2]} ]";
        let spans = array_elements(text, 0).unwrap();
        assert_eq!(spans.len(), 2);
        assert_eq!(&text[spans[1].clone()], b"{\"b\":[2]}");
        let seq = b"{\"a\":1}\n{\n \"b\": 2\n}\n";
        assert_eq!(top_level_values(seq).unwrap().len(), 2);
        assert!(is_single_value(b" {\"a\": [1, 2]} "));
        assert!(!is_single_value(b"{\"a\": [1, 2]"));
    }

    #[test]
    fn malformed_text_is_an_error_not_a_panic() {
        for bad in [&b"{"[..], b"{\"a\"", b"{\"a\":}", b"[1,", b"\"abc", b"{\"a\":1 \"b\":2}", b"", b"}"] {
            assert!(object_members(bad).is_err() || array_elements(bad, 0).is_err());
            let _ = top_level_values(bad);
        }
    }
}
