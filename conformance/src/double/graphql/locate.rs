//! Source positions for GraphQL errors.
//!
//! Why: Weaviate (graphql-go) reports `locations` of unknown / duplicate arguments at the start of
//! the argument NAME (spec §1.4), but `graphql-parser` records positions of fields only. This module
//! maps a field's position back to a byte offset and lexes the field's argument list from the
//! source text, so multi-line queries, aliases, strings and comments are handled correctly.

use graphql_parser::Pos;

/// One argument of a field as written in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgSpan {
    pub name: String,
    pub name_offset: usize,
    pub value_offset: usize,
}

/// The query text with position helpers.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    text: &'a str,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str) -> Self {
        Self { text }
    }

    /// Byte offset of a `graphql-parser` position (its columns count a tab as 8, ignore `\r`).
    pub fn offset_of(&self, pos: Pos) -> usize {
        let (mut line, mut col) = (1usize, 1usize);
        for (i, c) in self.text.char_indices() {
            if line == pos.line && col >= pos.column {
                return i;
            }
            match c {
                '\n' => {
                    line += 1;
                    col = 1;
                }
                '\r' | '\u{feff}' => {}
                '\t' => col += 8,
                _ => col += 1,
            }
        }
        self.text.len()
    }

    /// graphql-go's `{line, column}` of a byte offset (1-based; lines end at `\r\n`, `\n` or `\r`).
    pub fn location(&self, offset: usize) -> (usize, usize) {
        let bytes = self.text.as_bytes();
        let (mut line, mut line_start) = (1usize, 0usize);
        let mut i = 0;
        while i < offset.min(bytes.len()) {
            match bytes[i] {
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                    line += 1;
                    i += 2;
                    line_start = i;
                    continue;
                }
                b'\n' | b'\r' => {
                    line += 1;
                    line_start = i + 1;
                }
                _ => {}
            }
            i += 1;
        }
        (line, offset.saturating_sub(line_start) + 1)
    }

    /// The arguments of the field starting at `field_offset` (alias or name), in source order.
    pub fn arguments(&self, field_offset: usize) -> Vec<ArgSpan> {
        let b = self.text.as_bytes();
        let mut i = self.skip_ignored(field_offset);
        i = self.name_end(i);
        i = self.skip_ignored(i);
        if b.get(i) == Some(&b':') {
            i = self.skip_ignored(i + 1);
            i = self.name_end(i);
            i = self.skip_ignored(i);
        }
        let mut out = Vec::new();
        if b.get(i) != Some(&b'(') {
            return out;
        }
        i += 1;
        loop {
            i = self.skip_ignored(i);
            let start = i;
            let end = self.name_end(i);
            if end == start {
                return out;
            }
            let name = self.text[start..end].to_owned();
            i = self.skip_ignored(end);
            if b.get(i) != Some(&b':') {
                return out;
            }
            i = self.skip_ignored(i + 1);
            out.push(ArgSpan {
                name,
                name_offset: start,
                value_offset: i,
            });
            i = self.skip_value(i);
        }
    }

    fn skip_ignored(&self, mut i: usize) -> usize {
        let b = self.text.as_bytes();
        while i < b.len() {
            match b[i] {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
                b'#' => {
                    while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                        i += 1;
                    }
                }
                0xEF if self.text[i..].starts_with('\u{feff}') => i += 3,
                _ => break,
            }
        }
        i
    }

    fn name_end(&self, mut i: usize) -> usize {
        let b = self.text.as_bytes();
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        i
    }

    fn skip_string(&self, i: usize) -> usize {
        let b = self.text.as_bytes();
        if self.text[i..].starts_with("\"\"\"") {
            let mut j = i + 3;
            while j < b.len() {
                if self.text[j..].starts_with("\\\"\"\"") {
                    j += 4;
                } else if self.text[j..].starts_with("\"\"\"") {
                    return j + 3;
                } else {
                    j += 1;
                }
            }
            return b.len();
        }
        let mut j = i + 1;
        while j < b.len() {
            match b[j] {
                b'\\' => j += 2,
                b'"' => return j + 1,
                _ => j += 1,
            }
        }
        b.len()
    }

    fn skip_value(&self, i: usize) -> usize {
        let b = self.text.as_bytes();
        match b.get(i) {
            Some(b'"') => self.skip_string(i),
            Some(b'[') | Some(b'{') => {
                let mut depth = 0usize;
                let mut j = i;
                while j < b.len() {
                    match b[j] {
                        b'"' => {
                            j = self.skip_string(j);
                            continue;
                        }
                        b'#' => {
                            j = self.skip_ignored(j);
                            continue;
                        }
                        b'[' | b'{' => depth += 1,
                        b']' | b'}' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                return j + 1;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                b.len()
            }
            _ => {
                let mut j = i;
                while j < b.len()
                    && !matches!(
                        b[j],
                        b' ' | b'\t' | b'\n' | b'\r' | b',' | b')' | b']' | b'}' | b'#' | b'"'
                    )
                {
                    j += 1;
                }
                j.max(i + 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_positions_multiline() {
        let q = "{\n  Get {\n    a: Article(\n      limit: 2, # c\n      where: {path: [\"x)\"], valueText: \"(\"}\n\tnearText: {concepts: [\"a\"]}\n    ) { title }\n  }\n}";
        let s = Source::new(q);
        let field = q.find("a: Article").unwrap();
        let args = s.arguments(field);
        let names: Vec<&str> = args.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["limit", "where", "nearText"]);
        assert_eq!(s.location(args[0].name_offset), (4, 7));
        assert_eq!(s.location(args[2].name_offset), (6, 2));
    }

    #[test]
    fn parser_positions_map_to_offsets() {
        let q = "{\n\tGet { X }\n}";
        let s = Source::new(q);
        assert_eq!(
            s.offset_of(Pos { line: 2, column: 9 }),
            q.find('G').unwrap()
        );
    }
}
