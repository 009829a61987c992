//! [`Reader`]: a JSON pull parser over a `&str`, just what the protocol's decoders need.

use std::borrow::Cow;
use std::fmt;

/// Arrays and objects nested deeper than this in a value that is skipped are refused, as
/// serde_json refuses them, so that no input can exhaust the stack.
const MAX_DEPTH: u32 = 128;

/// Why a text could not be decoded, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    message: String,
    line: usize,
    column: usize,
}

impl DecodeError {
    /// What was wrong, without the position.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.message, self.line, self.column
        )
    }
}

impl std::error::Error for DecodeError {}

/// A position in a JSON text, read forwards one value at a time.
///
/// It is `Copy`, so looking ahead (for the tag of an internally tagged object) is a copy
/// that reads on and is dropped.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Reader { text, pos: 0 }
    }

    /// An error at the current position.
    pub fn error(&self, message: impl Into<String>) -> DecodeError {
        self.error_at(self.pos, message.into())
    }

    #[cold]
    fn error_at(&self, pos: usize, message: String) -> DecodeError {
        let before = &self.text.as_bytes()[..pos.min(self.text.len())];
        let line = before.iter().filter(|&&byte| byte == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&byte| byte == b'\n')
            .map_or(0, |newline| newline + 1);
        DecodeError {
            message,
            line,
            column: pos - line_start + 1,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next byte that is not white space, without taking it.
    pub fn peek(&mut self) -> Option<u8> {
        while let Some(&byte) = self.bytes().get(self.pos) {
            if !matches!(byte, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(byte);
            }
            self.pos += 1;
        }
        None
    }

    /// Takes the byte `wanted`, the next one that is not white space.
    fn expect(&mut self, wanted: u8, what: &str) -> Result<(), DecodeError> {
        // Compact JSON, as the server writes it, has no white space to skip.
        if self.bytes().get(self.pos) == Some(&wanted) {
            self.pos += 1;
            return Ok(());
        }
        self.expect_after_space(wanted, what)
    }

    #[inline(never)]
    fn expect_after_space(&mut self, wanted: u8, what: &str) -> Result<(), DecodeError> {
        match self.peek() {
            Some(byte) if byte == wanted => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(self.error(format!("expected {what}"))),
            None => Err(self.error(format!("end of text where {what} was expected"))),
        }
    }

    /// Checks that nothing but white space follows the value read.
    pub fn finish(mut self) -> Result<(), DecodeError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("trailing characters after the value")),
        }
    }

    /// Reads an object, calling `field` with each key; `field` must read the key's value
    /// (or [`skip`](Self::skip) it).
    pub fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, &str) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        self.expect(b'{', "an object")?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a key in quotes"));
            }
            let key = self.str()?;
            self.expect(b':', "':' after a key")?;
            field(self, &key)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected ',' or '}' in an object")),
            }
        }
    }

    /// Reads an array, each item with `item`.
    pub fn array<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        self.expect(b'[', "an array")?;
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(items);
        }
        loop {
            items.push(item(self)?);
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(items);
                }
                _ => return Err(self.error("expected ',' or ']' in an array")),
            }
        }
    }

    /// Looks ahead through the object that starts here for the string value of `key`, reading
    /// nothing: the tag of an internally tagged enum, which may come after the other fields.
    pub fn tag(&self, key: &str) -> Result<Cow<'a, str>, DecodeError> {
        let mut scan = *self;
        scan.expect(b'{', "an object")?;
        if scan.peek() != Some(b'}') {
            loop {
                if scan.peek() != Some(b'"') {
                    return Err(scan.error("expected a key in quotes"));
                }
                let name = scan.str()?;
                scan.expect(b':', "':' after a key")?;
                if name == key {
                    return scan.str();
                }
                scan.skip()?;
                match scan.peek() {
                    Some(b',') => scan.pos += 1,
                    Some(b'}') => break,
                    _ => return Err(scan.error("expected ',' or '}' in an object")),
                }
            }
        }
        Err(self.error(format!("missing field `{key}`")))
    }

    /// Whether the next value is `null`, which is then taken.
    pub fn null(&mut self) -> Result<bool, DecodeError> {
        if self.peek() == Some(b'n') {
            self.literal("null")?;
            return Ok(true);
        }
        Ok(false)
    }

    fn literal(&mut self, word: &str) -> Result<(), DecodeError> {
        if self.bytes()[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error(format!("expected {word}")))
        }
    }

    /// Reads `true` or `false`.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.peek() {
            Some(b't') => self.literal("true").map(|()| true),
            Some(b'f') => self.literal("false").map(|()| false),
            _ => Err(self.error("expected true or false")),
        }
    }

    /// Reads an integer that fits an `i64` or a `u64`, as `i128` so that both fit. A number
    /// with a fraction or an exponent is refused: no field of the protocol has one.
    pub fn integer(&mut self) -> Result<i128, DecodeError> {
        self.peek();
        let bytes = self.bytes();
        let negative = bytes.get(self.pos) == Some(&b'-');
        let digits_start = self.pos + usize::from(negative);
        let mut end = digits_start;
        // Accumulated in a u64, not parsed as an i128, which wasm computes in software.
        let mut magnitude: u64 = 0;
        while let Some(&byte) = bytes.get(end).filter(|byte| byte.is_ascii_digit()) {
            let digit = u64::from(byte - b'0');
            // Checked arithmetic on a u64 is a 128-bit multiplication in wasm32, so it is
            // used only for the digits that could overflow.
            magnitude = if magnitude < u64::MAX / 10 {
                magnitude * 10 + digit
            } else {
                magnitude
                    .checked_mul(10)
                    .and_then(|value| value.checked_add(digit))
                    .ok_or_else(|| self.error("number out of range"))?
            };
            end += 1;
        }
        let digits = end - digits_start;
        if digits == 0 {
            return Err(self.error("expected a number"));
        }
        if digits > 1 && bytes[digits_start] == b'0' {
            return Err(self.error("a number may not start with 0"));
        }
        // `-0` is JSON, but serde reads it as the float -0.0 and refuses it for an integer
        // field; so does this.
        if matches!(bytes.get(end), Some(b'.' | b'e' | b'E')) || (negative && magnitude == 0) {
            return Err(self.error("expected a whole number"));
        }
        self.pos = end;
        let magnitude = i128::from(magnitude);
        Ok(if negative { -magnitude } else { magnitude })
    }

    /// Reads a string, borrowed from the text when it has no escapes.
    pub fn str(&mut self) -> Result<Cow<'a, str>, DecodeError> {
        self.expect(b'"', "a string")?;
        let bytes = self.bytes();
        let start = self.pos;
        let mut end = start;
        loop {
            end = skip_plain_words(bytes, end);
            match bytes.get(end) {
                Some(b'"') => {
                    self.pos = end + 1;
                    return Ok(Cow::Borrowed(&self.text[start..end]));
                }
                Some(b'\\') => break,
                Some(&byte) if byte < 0x20 => {
                    self.pos = end;
                    return Err(self.error("control character in a string"));
                }
                Some(_) => end += 1,
                None => {
                    self.pos = end;
                    return Err(self.error("end of text inside a string"));
                }
            }
        }
        let mut owned = String::with_capacity(end - start + 16);
        owned.push_str(&self.text[start..end]);
        self.pos = end;
        loop {
            let run_start = self.pos;
            self.pos = skip_plain_words(bytes, self.pos);
            while let Some(&byte) = bytes.get(self.pos) {
                if byte == b'"' || byte == b'\\' || byte < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            owned.push_str(&self.text[run_start..self.pos]);
            match bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(owned));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = match bytes.get(self.pos) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            self.unicode_escape()?
                        }
                        _ => return Err(self.error("invalid escape in a string")),
                    };
                    // The position is on the escape's last character.
                    self.pos += 1;
                    owned.push(escaped);
                }
                Some(_) => return Err(self.error("control character in a string")),
                None => return Err(self.error("end of text inside a string")),
            }
        }
    }

    /// Reads the four hex digits after `\u` (and a second escape for a surrogate pair),
    /// leaving the position on the last digit read.
    fn unicode_escape(&mut self) -> Result<char, DecodeError> {
        let first = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&first) {
            // A high surrogate must be followed by `\u` and a low one.
            if !self.bytes()[self.pos + 1..].starts_with(b"\\u") {
                return Err(self.error("lone leading surrogate in a string"));
            }
            self.pos += 3;
            let second = self.hex4()?;
            if !(0xDC00..0xE000).contains(&second) {
                return Err(self.error("invalid surrogate pair in a string"));
            }
            0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        } else {
            first
        };
        char::from_u32(code).ok_or_else(|| self.error("lone trailing surrogate in a string"))
    }

    /// Reads four hex digits starting at the position, leaving it on the last one.
    fn hex4(&mut self) -> Result<u32, DecodeError> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|digits| digits.bytes().all(|byte| byte.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("expected four hex digits after \\u"))?;
        let value = u32::from_str_radix(digits, 16).map_err(|_| self.error("bad \\u escape"))?;
        self.pos += 3;
        Ok(value)
    }

    /// Reads past any one value, checking its syntax.
    pub fn skip(&mut self) -> Result<(), DecodeError> {
        self.skip_nested(0)
    }

    fn skip_nested(&mut self, depth: u32) -> Result<(), DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        match self.peek() {
            Some(b'{') => self.object(|reader, _| reader.skip_nested(depth + 1)),
            Some(b'[') => self.array(|reader| reader.skip_nested(depth + 1)).map(drop),
            Some(b'"') => self.str().map(drop),
            Some(b't' | b'f') => self.bool().map(drop),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.skip_number(),
            Some(_) => Err(self.error("expected a value")),
            None => Err(self.error("end of text where a value was expected")),
        }
    }

    /// Reads past a number of any form JSON allows.
    fn skip_number(&mut self) -> Result<(), DecodeError> {
        let bytes = self.bytes();
        let digits = |pos: &mut usize| {
            let start = *pos;
            while bytes.get(*pos).is_some_and(u8::is_ascii_digit) {
                *pos += 1;
            }
            *pos > start
        };
        let mut pos = self.pos;
        if bytes.get(pos) == Some(&b'-') {
            pos += 1;
        }
        let int_start = pos;
        if !digits(&mut pos) || (pos - int_start > 1 && bytes[int_start] == b'0') {
            return Err(self.error("invalid number"));
        }
        if bytes.get(pos) == Some(&b'.') {
            pos += 1;
            if !digits(&mut pos) {
                return Err(self.error("invalid number"));
            }
        }
        if matches!(bytes.get(pos), Some(b'e' | b'E')) {
            pos += 1;
            if matches!(bytes.get(pos), Some(b'+' | b'-')) {
                pos += 1;
            }
            if !digits(&mut pos) {
                return Err(self.error("invalid number"));
            }
        }
        self.pos = pos;
        Ok(())
    }

    /// Skips a value and returns a reader positioned at its start, to read it later: the
    /// arguments of a call, when they come before the call's name.
    pub fn defer(&mut self) -> Result<Reader<'a>, DecodeError> {
        self.peek();
        let start = *self;
        self.skip()?;
        Ok(start)
    }
}

/// Moves `pos` on to the first byte that is not a plain string character (a quote, a
/// backslash or a control character) when one is in the whole 8-byte words from `pos`, or
/// past the last whole word otherwise; it tests the eight bytes of a word at once.
#[inline(always)]
fn skip_plain_words(bytes: &[u8], mut pos: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte of `word` equal to the byte repeated in `pattern`, or below the byte repeated in
    // `below` (for values up to 0x80), sets that byte's high bit. A byte after (above) such a
    // byte may set its high bit too, from the borrow, but none before it: the lowest bit set
    // is the first such byte.
    let has_byte = |word: u64, pattern: u64| {
        let zeroed = word ^ pattern;
        zeroed.wrapping_sub(ONES) & !zeroed & HIGHS
    };
    let has_less = |word: u64, below: u64| word.wrapping_sub(below) & !word & HIGHS;
    while let Some(chunk) = bytes.get(pos..pos + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("a slice of 8 bytes"));
        let special = has_byte(word, u64::from(b'"') * ONES)
            | has_byte(word, u64::from(b'\\') * ONES)
            | has_less(word, 0x20 * ONES);
        if special != 0 {
            // Little-endian: the first byte of the word is its lowest.
            return pos + (special.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time scan stops where a byte-at-a-time scan would, for every special
    /// byte at every position of a word, after plain ASCII, UTF-8 and bytes just above the
    /// special ones (which a borrow could mistake for them).
    #[test]
    fn the_word_scan_stops_at_the_first_special_byte() {
        let special = |byte: u8| byte == b'"' || byte == b'\\' || byte < 0x20;
        for filler in [b'a', 0xC3, b'#', b']', 0x21, 0x01 + b'"'] {
            for len in 0..20 {
                for (at, byte) in (0..len)
                    .flat_map(|at| [b'"', b'\\', 0x00, 0x1F, b'\n'].map(move |byte| (at, byte)))
                {
                    let mut bytes = vec![filler; len];
                    bytes[at] = byte;
                    // Bytes after the first special one must not matter.
                    for (later, byte) in bytes.iter_mut().enumerate().skip(at + 1) {
                        *byte = if later % 2 == 0 { b'"' } else { 0x01 };
                    }
                    let first = bytes.iter().position(|&b| special(b)).unwrap();
                    let found = skip_plain_words(&bytes, 0);
                    if first < len / 8 * 8 {
                        assert_eq!(found, first, "{bytes:?}");
                    } else {
                        assert_eq!(found, len / 8 * 8, "{bytes:?}");
                    }
                }
                let plain = vec![filler; len];
                assert_eq!(skip_plain_words(&plain, 0), len / 8 * 8);
            }
        }
    }

    #[test]
    fn strings_unescape_as_json_says() {
        let read = |text: &str| Reader::new(text).str().map(Cow::into_owned);
        assert_eq!(read(r#""plain""#).unwrap(), "plain");
        assert_eq!(
            read(r#""a\"b\\c\/d\n\t\r\b\f""#).unwrap(),
            "a\"b\\c/d\n\t\r\u{8}\u{c}"
        );
        assert_eq!(read(r#""\u00e9\u4e2d""#).unwrap(), "é中");
        assert_eq!(read(r#""\ud83d\ude00!""#).unwrap(), "😀!");
        assert_eq!(read(r#""é and \n""#).unwrap(), "é and \n");
        for bad in [
            r#""open"#,
            r#""\x""#,
            r#""\u12""#,
            r#""\ud83d""#,
            r#""\ud83dx""#,
            r#""\ude00""#,
            "\"tab\there\"",
            r#""\"#,
            r#""\ud83d\u0041""#,
        ] {
            assert!(read(bad).is_err(), "{bad} was read");
        }
    }

    proptest::proptest! {
        /// Any string serde writes reads back as itself: escapes, characters of every width,
        /// and a quote or a backslash at every position of the 8-byte words scanned at once.
        #[test]
        fn any_string_reads_back(text in "(\\PC|[\"\\\\\\x00-\\x1f\\x7f]){0,40}") {
            let json = serde_json::to_string(&text).unwrap();
            let mut reader = Reader::new(&json);
            proptest::prop_assert_eq!(reader.str().unwrap(), text.as_str());
            proptest::prop_assert!(reader.finish().is_ok());
        }
    }

    #[test]
    fn a_control_character_is_refused_wherever_it_is() {
        for length in 0..20 {
            for at in 0..length {
                let mut text = "x".repeat(length);
                text.replace_range(at..=at, "\n");
                let json = format!("\"{text}\"");
                assert!(Reader::new(&json).str().is_err(), "{json:?}");
            }
        }
    }

    #[test]
    fn integers_are_whole_and_in_range() {
        let read = |text: &str| Reader::new(text).integer();
        assert_eq!(read("0").unwrap(), 0);
        assert_eq!(read("-12").unwrap(), -12);
        assert_eq!(read("18446744073709551615").unwrap(), i128::from(u64::MAX));
        for bad in [
            "",
            "-",
            "-0",
            "01",
            "1.5",
            "1e3",
            "123456789012345678901",
            "x",
        ] {
            assert!(read(bad).is_err(), "{bad} was read");
        }
    }

    #[test]
    fn skipping_checks_syntax_and_depth() {
        let skip = |text: &str| {
            let mut reader = Reader::new(text);
            reader.skip().and_then(|()| reader.finish())
        };
        for good in [
            r#"{"a": [1, -2.5e+3, "x", true, false, null, {}], "b": {"c": []}}"#,
            "  0  ",
            "[[]]",
        ] {
            assert_eq!(skip(good), Ok(()), "{good}");
        }
        for bad in [
            "{",
            "[1,]",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "01",
            "1.",
            "-",
            "nul",
            "[1] 2",
            "",
            "{1:2}",
        ] {
            assert!(skip(bad).is_err(), "{bad} was skipped");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(skip(&deep).unwrap_err().message().contains("deeply"));
    }

    #[test]
    fn a_tag_is_found_anywhere_in_its_object() {
        let text = r#"{"a": {"type": "inner"}, "b": [1], "type": "outer"}"#;
        let reader = Reader::new(text);
        assert_eq!(reader.tag("type").unwrap(), "outer");
        assert!(
            reader
                .tag("kind")
                .unwrap_err()
                .message()
                .contains("missing field `kind`")
        );
        assert!(Reader::new(r#"{"type": 1}"#).tag("type").is_err());
        assert!(Reader::new(r#"{"a": }"#).tag("type").is_err());
    }

    #[test]
    fn errors_say_where() {
        let error = Reader::new("{\n  \"a\": tru}")
            .object(|reader, _| reader.bool().map(drop))
            .unwrap_err();
        assert_eq!(error.to_string(), "expected true at line 2 column 8");
    }
}
