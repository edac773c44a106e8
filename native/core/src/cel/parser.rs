//! Lexer and recursive-descent parser for the CEL grammar
//! (cel-spec `doc/langdef.md`), expanding the standard macros. Nesting is
//! bounded: parenthesis/bracket/call recursion and the height of the tree
//! are both checked against `max_depth`, so hostile input cannot overflow
//! the stack here or in any later recursive pass.
use std::sync::Arc;

use super::ast::{BinaryOp, Comprehension, Expr, ExprKind, MacroKind, UnaryOp};
use super::value::Value;

/// A parse error at a byte offset of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: u32,
    pub message: String,
}

type PResult<T> = Result<T, SyntaxError>;

const RESERVED: &[&str] = &[
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// Magnitude of an integer literal (sign handled by the parser).
    Int(u64),
    Uint(u64),
    Double(f64),
    Str(String),
    Bytes(Vec<u8>),
    Ident(Arc<str>),
    Punct(&'static str),
    Eof,
}

#[derive(Clone, Copy)]
struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

const PUNCTS: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "+", "-", "*", "/", "%", "!", "?", ":", ".", ",",
    "(", ")", "[", "]", "{", "}",
];

impl<'a> Lexer<'a> {
    fn err<T>(&self, pos: usize, message: impl Into<String>) -> PResult<T> {
        Err(SyntaxError {
            pos: pos as u32,
            message: message.into(),
        })
    }

    fn skip_space(&mut self) {
        while self.pos < self.bytes.len() {
            match self.bytes[self.pos] {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0c => self.pos += 1,
                b'/' if self.bytes.get(self.pos + 1) == Some(&b'/') => {
                    while self.pos < self.bytes.len() && self.bytes[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    /// The next token and its start offset.
    fn next(&mut self) -> PResult<(Tok, usize)> {
        self.skip_space();
        let start = self.pos;
        let Some(&c) = self.bytes.get(start) else {
            return Ok((Tok::Eof, start));
        };
        if c.is_ascii_digit()
            || (c == b'.' && self.bytes.get(start + 1).is_some_and(u8::is_ascii_digit))
        {
            return self.number(start).map(|t| (t, start));
        }
        if c == b'\'' || c == b'"' {
            return self.string(start, false, false).map(|t| (t, start));
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            // String prefixes r/R and b/B (in either order).
            let rest = &self.bytes[start..];
            let (raw, bytes, skip) = match rest {
                [b'r' | b'R', b'b' | b'B', q, ..] | [b'b' | b'B', b'r' | b'R', q, ..]
                    if *q == b'\'' || *q == b'"' =>
                {
                    (true, true, 2)
                }
                [b'r' | b'R', q, ..] if *q == b'\'' || *q == b'"' => (true, false, 1),
                [b'b' | b'B', q, ..] if *q == b'\'' || *q == b'"' => (false, true, 1),
                _ => (false, false, 0),
            };
            if skip > 0 {
                self.pos += skip;
                return self.string(start, raw, bytes).map(|t| (t, start));
            }
            let mut end = start;
            while end < self.bytes.len()
                && (self.bytes[end].is_ascii_alphanumeric() || self.bytes[end] == b'_')
            {
                end += 1;
            }
            self.pos = end;
            return Ok((Tok::Ident(Arc::from(&self.src[start..end])), start));
        }
        if c == b'`' {
            // Quoted identifier (field names with punctuation).
            let end = self.src[start + 1..]
                .find(['`', '\n'])
                .map(|i| start + 1 + i)
                .filter(|&e| self.bytes[e] == b'`');
            let Some(end) = end else {
                return self.err(start, "unterminated quoted identifier");
            };
            let name = &self.src[start + 1..end];
            if name.is_empty() || name.contains('\n') {
                return self.err(start, "invalid quoted identifier");
            }
            self.pos = end + 1;
            // Marked with a leading backquote: only valid as a field name.
            return Ok((Tok::Ident(Arc::from(format!("`{name}").as_str())), start));
        }
        for p in PUNCTS {
            if self.bytes[start..].starts_with(p.as_bytes()) {
                self.pos += p.len();
                return Ok((Tok::Punct(p), start));
            }
        }
        let ch = self.src[start..].chars().next().unwrap_or('?');
        self.err(start, format!("unexpected character {ch:?}"))
    }

    fn number(&mut self, start: usize) -> PResult<Tok> {
        let b = self.bytes;
        let mut i = start;
        if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
            i += 2;
            let digits = i;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
            if i == digits {
                return self.err(start, "invalid hex literal");
            }
            let text = &self.src[digits..i];
            return self.int_suffix(start, i, text, 16);
        }
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_end = i;
        let mut is_double = false;
        if i < b.len() && b[i] == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            is_double = true;
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            let mut j = i + 1;
            if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                j += 1;
            }
            if j < b.len() && b[j].is_ascii_digit() {
                is_double = true;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                i = j;
            }
        }
        if is_double {
            self.pos = i;
            return match self.src[start..i].parse::<f64>() {
                Ok(d) if d.is_finite() => Ok(Tok::Double(d)),
                Ok(_) => self.err(start, "double literal out of range"),
                Err(_) => self.err(start, "invalid double literal"),
            };
        }
        let text = &self.src[start..int_end];
        self.int_suffix(start, int_end, text, 10)
    }

    fn int_suffix(&mut self, start: usize, end: usize, digits: &str, radix: u32) -> PResult<Tok> {
        let unsigned = matches!(self.bytes.get(end), Some(b'u' | b'U'));
        self.pos = end + usize::from(unsigned);
        let Ok(v) = u64::from_str_radix(digits, radix) else {
            return self.err(start, "integer literal out of range");
        };
        Ok(if unsigned { Tok::Uint(v) } else { Tok::Int(v) })
    }

    fn string(&mut self, start: usize, raw: bool, bytes: bool) -> PResult<Tok> {
        let b = self.bytes;
        let q = b[self.pos];
        let triple = b[self.pos..].starts_with(&[q, q, q]);
        self.pos += if triple { 3 } else { 1 };
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&c) = b.get(self.pos) else {
                return self.err(start, "unterminated string literal");
            };
            if c == q && (!triple || b[self.pos..].starts_with(&[q, q, q])) {
                self.pos += if triple { 3 } else { 1 };
                break;
            }
            if !triple && (c == b'\n' || c == b'\r') {
                return self.err(start, "unterminated string literal");
            }
            if c == b'\\' && !raw {
                self.escape(&mut out, bytes)?;
                continue;
            }
            if c == b'\\' && raw {
                // A raw string keeps the backslash; an escaped quote does
                // not end the literal.
                out.push(c);
                self.pos += 1;
                if b.get(self.pos) == Some(&q) && !triple {
                    out.push(q);
                    self.pos += 1;
                }
                continue;
            }
            if c == b'\r' {
                // Normalise CRLF / CR in multi-line strings to LF.
                out.push(b'\n');
                self.pos += 1;
                if b.get(self.pos) == Some(&b'\n') {
                    self.pos += 1;
                }
                continue;
            }
            out.push(c);
            self.pos += 1;
        }
        if bytes {
            Ok(Tok::Bytes(out))
        } else {
            match String::from_utf8(out) {
                Ok(s) => Ok(Tok::Str(s)),
                Err(_) => self.err(start, "invalid UTF-8 in string literal"),
            }
        }
    }

    fn escape(&mut self, out: &mut Vec<u8>, bytes: bool) -> PResult<()> {
        let at = self.pos;
        let b = self.bytes;
        let Some(&c) = b.get(at + 1) else {
            return self.err(at, "unterminated escape sequence");
        };
        self.pos += 2;
        let simple = match c {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' | b'\'' | b'"' | b'`' | b'?' => Some(c),
            _ => None,
        };
        if let Some(v) = simple {
            out.push(v);
            return Ok(());
        }
        let (len, radix) = match c {
            b'x' | b'X' => (2, 16),
            b'u' if !bytes => (4, 16),
            b'U' if !bytes => (8, 16),
            b'0'..=b'3' => {
                self.pos -= 1;
                (3, 8)
            }
            _ => return self.err(at, "invalid escape sequence"),
        };
        let digits = self.src.get(self.pos..self.pos + len);
        let Some(code) = digits.and_then(|d| {
            d.bytes()
                .all(|x| (x as char).is_digit(radix))
                .then(|| u32::from_str_radix(d, radix).ok())
                .flatten()
        }) else {
            return self.err(at, "invalid escape sequence");
        };
        self.pos += len;
        if bytes {
            out.push(code as u8);
        } else {
            let Some(ch) = char::from_u32(code) else {
                return self.err(at, "invalid code point in escape sequence");
            };
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
        Ok(())
    }
}

/// Parses `src` into an expression tree no taller than `max_depth`.
pub fn parse(src: &str, max_depth: u32) -> PResult<Expr> {
    let mut p = Parser {
        lex: Lexer {
            src,
            bytes: src.as_bytes(),
            pos: 0,
        },
        tok: Tok::Eof,
        tok_pos: 0,
        depth: 0,
        max_depth,
    };
    p.advance()?;
    let e = p.expr()?;
    if p.tok != Tok::Eof {
        return p.err_here(format!("unexpected {}", p.describe()));
    }
    Ok(e)
}

struct Parser<'a> {
    lex: Lexer<'a>,
    tok: Tok,
    tok_pos: usize,
    depth: u32,
    max_depth: u32,
}

impl Parser<'_> {
    fn advance(&mut self) -> PResult<Tok> {
        let (t, p) = self.lex.next()?;
        self.tok_pos = p;
        Ok(std::mem::replace(&mut self.tok, t))
    }

    fn err_here<T>(&self, message: impl Into<String>) -> PResult<T> {
        Err(SyntaxError {
            pos: self.tok_pos as u32,
            message: message.into(),
        })
    }

    fn describe(&self) -> String {
        match &self.tok {
            Tok::Eof => "end of input".into(),
            Tok::Punct(p) => format!("'{p}'"),
            Tok::Ident(i) => format!("'{}'", i.trim_start_matches('`')),
            _ => "literal".into(),
        }
    }

    fn is(&self, p: &str) -> bool {
        matches!(&self.tok, Tok::Punct(q) if *q == p)
    }

    fn eat(&mut self, p: &str) -> PResult<bool> {
        if self.is(p) {
            self.advance()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn expect(&mut self, p: &str) -> PResult<()> {
        if !self.eat(p)? {
            return self.err_here(format!("expected '{p}', found {}", self.describe()));
        }
        Ok(())
    }

    /// Builds a node, enforcing the height limit.
    fn node(&self, pos: usize, kind: ExprKind) -> PResult<Expr> {
        let e = Expr::new(pos as u32, kind);
        if e.height > self.max_depth {
            return Err(SyntaxError {
                pos: pos as u32,
                message: format!(
                    "expression nested too deeply (max_depth {})",
                    self.max_depth
                ),
            });
        }
        Ok(e)
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return self.err_here(format!(
                "expression nested too deeply (max_depth {})",
                self.max_depth
            ));
        }
        Ok(())
    }

    fn expr(&mut self) -> PResult<Expr> {
        self.enter()?;
        let pos = self.tok_pos;
        let cond = self.or()?;
        let e = if self.is("?") {
            self.advance()?;
            let a = self.or()?;
            self.expect(":")?;
            let b = self.expr()?;
            self.node(
                pos,
                ExprKind::Ternary(Box::new(cond), Box::new(a), Box::new(b)),
            )?
        } else {
            cond
        };
        self.depth -= 1;
        Ok(e)
    }

    fn or(&mut self) -> PResult<Expr> {
        self.chain("||", Self::and, ExprKind::Or)
    }

    fn and(&mut self) -> PResult<Expr> {
        self.chain("&&", Self::relation, ExprKind::And)
    }

    /// `operand (op operand)*` as one n-ary node (`a || b || c` is one `Or`
    /// of three), or the lone operand.
    fn chain(
        &mut self,
        op: &str,
        operand: fn(&mut Self) -> PResult<Expr>,
        node: fn(Vec<Expr>) -> ExprKind,
    ) -> PResult<Expr> {
        let first = operand(self)?;
        if !self.is(op) {
            return Ok(first);
        }
        let pos = first.pos as usize;
        let mut items = vec![first];
        while self.eat(op)? {
            items.push(operand(self)?);
        }
        self.node(pos, node(items))
    }

    fn relation(&mut self) -> PResult<Expr> {
        self.left_assoc(Self::addition, |tok| match tok {
            Tok::Punct("==") => Some(BinaryOp::Eq),
            Tok::Punct("!=") => Some(BinaryOp::Ne),
            Tok::Punct("<") => Some(BinaryOp::Lt),
            Tok::Punct("<=") => Some(BinaryOp::Le),
            Tok::Punct(">") => Some(BinaryOp::Gt),
            Tok::Punct(">=") => Some(BinaryOp::Ge),
            Tok::Ident(i) if &**i == "in" => Some(BinaryOp::In),
            _ => None,
        })
    }

    fn addition(&mut self) -> PResult<Expr> {
        self.left_assoc(Self::multiplication, |tok| match tok {
            Tok::Punct("+") => Some(BinaryOp::Add),
            Tok::Punct("-") => Some(BinaryOp::Sub),
            _ => None,
        })
    }

    fn multiplication(&mut self) -> PResult<Expr> {
        self.left_assoc(Self::unary, |tok| match tok {
            Tok::Punct("*") => Some(BinaryOp::Mul),
            Tok::Punct("/") => Some(BinaryOp::Div),
            Tok::Punct("%") => Some(BinaryOp::Rem),
            _ => None,
        })
    }

    /// One level of left-associative binary operators: `operand (op operand)*`.
    fn left_assoc(
        &mut self,
        operand: fn(&mut Self) -> PResult<Expr>,
        operator: fn(&Tok) -> Option<BinaryOp>,
    ) -> PResult<Expr> {
        let mut lhs = operand(self)?;
        while let Some(op) = operator(&self.tok) {
            let pos = self.tok_pos;
            self.advance()?;
            let rhs = operand(self)?;
            lhs = self.node(pos, ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)))?;
        }
        Ok(lhs)
    }

    /// The token after the current one.
    fn peek(&self) -> PResult<Tok> {
        let mut lex = self.lex;
        lex.next().map(|(t, _)| t)
    }

    /// `"!" {"!"} Member | "-" {"-"} Member`: a run of one operator, where
    /// an even run cancels out (as cel-go parses it). A `-` directly before
    /// a number literal is part of the literal (so -9223372036854775808 is
    /// a valid int).
    fn unary(&mut self) -> PResult<Expr> {
        let op = match self.tok {
            Tok::Punct("-") if matches!(self.peek()?, Tok::Int(_) | Tok::Double(_)) => {
                return self.member()
            }
            Tok::Punct(p @ ("!" | "-")) => p,
            _ => return self.member(),
        };
        let pos = self.tok_pos;
        let mut count = 0;
        while self.is(op) {
            self.advance()?;
            count += 1;
        }
        let operand = self.member()?;
        if count % 2 == 0 {
            return Ok(operand);
        }
        let op = if op == "!" {
            UnaryOp::Not
        } else {
            UnaryOp::Neg
        };
        self.node(pos, ExprKind::Unary(op, Box::new(operand)))
    }

    fn member(&mut self) -> PResult<Expr> {
        let mut e = self.primary()?;
        loop {
            let pos = self.tok_pos;
            if self.eat(".")? {
                // Nodes of a selection or a method call are located at the name.
                let name_pos = self.tok_pos;
                let name = match self.advance()? {
                    Tok::Ident(n) if !matches!(&*n, "in" | "true" | "false" | "null") => n,
                    _ => {
                        return Err(SyntaxError {
                            pos: name_pos as u32,
                            message: "expected a field or method name after '.'".into(),
                        })
                    }
                };
                let quoted = name.starts_with('`');
                let name: Arc<str> = Arc::from(name.trim_start_matches('`'));
                if self.is("(") && !quoted {
                    self.advance()?;
                    let args = self.expr_list(")")?;
                    e = self.receiver_call(name_pos, e, name, args)?;
                } else {
                    e = self.node(
                        name_pos,
                        ExprKind::Select {
                            operand: Box::new(e),
                            field: name,
                            test_only: false,
                        },
                    )?;
                }
            } else if self.eat("[")? {
                let index = self.expr()?;
                self.expect("]")?;
                e = self.node(pos, ExprKind::Index(Box::new(e), Box::new(index)))?;
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> PResult<Expr> {
        let pos = self.tok_pos;
        let neg = self.is("-");
        if neg {
            self.advance()?;
            if !matches!(self.tok, Tok::Int(_) | Tok::Double(_)) {
                return Err(SyntaxError {
                    pos: pos as u32,
                    message: "unexpected '-'".into(),
                });
            }
        }
        let tok = self.advance()?;
        let lit = |v: Value| ExprKind::Literal(v);
        let kind = match tok {
            Tok::Int(m) => {
                let v = if neg {
                    if m > 1u64 << 63 {
                        return Err(SyntaxError {
                            pos: pos as u32,
                            message: "integer literal out of range".into(),
                        });
                    }
                    (m as i64).wrapping_neg()
                } else {
                    i64::try_from(m).map_err(|_| SyntaxError {
                        pos: pos as u32,
                        message: "integer literal out of range".into(),
                    })?
                };
                lit(Value::Int(v))
            }
            Tok::Double(d) => lit(Value::Double(if neg { -d } else { d })),
            Tok::Uint(u) => lit(Value::Uint(u)),
            Tok::Str(s) => lit(Value::from(s)),
            Tok::Bytes(b) => lit(Value::Bytes(Arc::from(b))),
            Tok::Punct("(") => {
                // A parenthesised group counts as one level of depth.
                let mut e = self.expr()?;
                self.expect(")")?;
                e.height += 1;
                if e.height > self.max_depth {
                    return Err(SyntaxError {
                        pos: pos as u32,
                        message: format!(
                            "expression nested too deeply (max_depth {})",
                            self.max_depth
                        ),
                    });
                }
                return Ok(e);
            }
            Tok::Punct("[") => {
                let items = self.expr_list("]")?;
                ExprKind::List(items)
            }
            Tok::Punct("{") => ExprKind::Map(self.map_inits()?),
            Tok::Punct(".") => {
                // Leading dot: a name in the root scope.
                let Tok::Ident(name) = self.advance()? else {
                    return self.err_here("expected an identifier after '.'");
                };
                return self.ident_or_call(pos, name);
            }
            Tok::Ident(name) => return self.ident_or_call(pos, name),
            Tok::Eof => {
                return Err(SyntaxError {
                    pos: pos as u32,
                    message: "unexpected end of input".into(),
                })
            }
            Tok::Punct(p) => {
                return Err(SyntaxError {
                    pos: pos as u32,
                    message: format!("unexpected '{p}'"),
                })
            }
        };
        self.node(pos, kind)
    }

    fn ident_or_call(&mut self, pos: usize, name: Arc<str>) -> PResult<Expr> {
        if name.starts_with('`') {
            return Err(SyntaxError {
                pos: pos as u32,
                message: "a quoted identifier is only valid as a field name".into(),
            });
        }
        match &*name {
            "true" => return self.node(pos, ExprKind::Literal(Value::Bool(true))),
            "false" => return self.node(pos, ExprKind::Literal(Value::Bool(false))),
            "null" => return self.node(pos, ExprKind::Literal(Value::Null)),
            n if n == "in" || RESERVED.contains(&n) => {
                return Err(SyntaxError {
                    pos: pos as u32,
                    message: format!("reserved identifier '{n}'"),
                })
            }
            _ => {}
        }
        if self.is("(") {
            self.advance()?;
            let args = self.expr_list(")")?;
            if &*name == "has" && args.len() == 1 {
                let arg = args.into_iter().next().expect("one argument");
                return match arg.kind {
                    ExprKind::Select { operand, field, .. } => self.node(
                        pos,
                        ExprKind::Select {
                            operand,
                            field,
                            test_only: true,
                        },
                    ),
                    _ => Err(SyntaxError {
                        pos: arg.pos,
                        message: "invalid argument to has() macro".into(),
                    }),
                };
            }
            return self.node(
                pos,
                ExprKind::Call {
                    target: None,
                    function: name,
                    args,
                },
            );
        }
        self.node(pos, ExprKind::Ident(name))
    }

    fn receiver_call(
        &mut self,
        pos: usize,
        target: Expr,
        name: Arc<str>,
        mut args: Vec<Expr>,
    ) -> PResult<Expr> {
        let kind = match (&*name, args.len()) {
            ("all", 2) => Some(MacroKind::All),
            ("exists", 2) => Some(MacroKind::Exists),
            ("exists_one", 2) => Some(MacroKind::ExistsOne),
            ("map", 2 | 3) => Some(MacroKind::Map),
            ("filter", 2) => Some(MacroKind::Filter),
            ("sortBy", 2) => Some(MacroKind::SortBy),
            _ => None,
        };
        let target_pos = target.pos;
        let Some(kind) = kind else {
            return self.node(
                pos,
                ExprKind::Call {
                    target: Some(Box::new(target)),
                    function: name,
                    args,
                },
            );
        };
        let var = match &args[0].kind {
            ExprKind::Ident(v) => v.clone(),
            _ => {
                return Err(SyntaxError {
                    pos: args[0].pos,
                    message: format!("{}() variable must be a simple identifier", kind.name()),
                })
            }
        };
        let last = args.pop().expect("macro has arguments");
        let (filter, transform) = match (kind, args.len()) {
            (MacroKind::Map, 2) => (args.pop(), Some(last)),
            (MacroKind::Map | MacroKind::SortBy, _) => (None, Some(last)),
            _ => (Some(last), None),
        };
        self.node(
            target_pos as usize,
            ExprKind::Comprehension(Box::new(Comprehension {
                kind,
                range: target,
                var,
                filter,
                transform,
            })),
        )
    }

    fn expr_list(&mut self, close: &str) -> PResult<Vec<Expr>> {
        let mut items = Vec::new();
        while !self.is(close) {
            items.push(self.expr()?);
            if !self.eat(",")? {
                break;
            }
        }
        self.expect(close)?;
        Ok(items)
    }

    fn map_inits(&mut self) -> PResult<Vec<(Expr, Expr)>> {
        let mut entries = Vec::new();
        while !self.is("}") {
            let k = self.expr()?;
            self.expect(":")?;
            let v = self.expr()?;
            entries.push((k, v));
            if !self.eat(",")? {
                break;
            }
        }
        self.expect("}")?;
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(src: &str) -> Expr {
        parse(src, 64).unwrap_or_else(|e| panic!("{src}: {e:?}"))
    }

    #[test]
    fn literals() {
        assert!(matches!(
            ok("-9223372036854775808").kind,
            ExprKind::Literal(Value::Int(i64::MIN))
        ));
        assert!(parse("9223372036854775808", 64).is_err());
        assert!(matches!(
            ok("0x10u").kind,
            ExprKind::Literal(Value::Uint(16))
        ));
        assert!(matches!(ok("1e3").kind, ExprKind::Literal(Value::Double(d)) if d == 1000.0));
        match ok(r#"'\x41\u00e9\101'"#).kind {
            ExprKind::Literal(Value::String(s)) => assert_eq!(&*s, "AéA"),
            other => panic!("{other:?}"),
        }
        match ok(r#"b'\xff'"#).kind {
            ExprKind::Literal(Value::Bytes(b)) => assert_eq!(&*b, &[0xff]),
            other => panic!("{other:?}"),
        }
        match ok(r#"r'\n'"#).kind {
            ExprKind::Literal(Value::String(s)) => assert_eq!(&*s, "\\n"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn limits_hold_on_hostile_nesting() {
        for src in [
            "(".repeat(100_000) + "1" + &")".repeat(100_000),
            "!-".repeat(100_000) + "true",
            "a".to_string() + &".b".repeat(100_000),
            "1".to_string() + &"+1".repeat(100_000),
            "[".repeat(100_000),
            "a".to_string() + &"[0]".repeat(100_000),
        ] {
            assert!(parse(&src, 64).is_err());
        }
        ok(&("(".repeat(32) + "7" + &")".repeat(32)));
        // Height 62 (61 lists around a literal) is within a limit of 64.
        ok(&("[".repeat(61) + "1" + &"]".repeat(61)));
        assert!(parse(&("[".repeat(64) + "1" + &"]".repeat(64)), 64).is_err());
        // A run of one unary operator is a loop, and an even run cancels.
        assert!(matches!(
            ok(&("!".repeat(100_000) + "true")).kind,
            ExprKind::Literal(Value::Bool(true))
        ));
        assert!(matches!(
            ok(&("-".repeat(100_001) + "x")).kind,
            ExprKind::Unary(UnaryOp::Neg, _)
        ));
    }

    #[test]
    fn macros_and_reserved_words() {
        assert!(matches!(
            ok("has(a.b)").kind,
            ExprKind::Select {
                test_only: true,
                ..
            }
        ));
        assert!(parse("has(a)", 64).is_err());
        assert!(matches!(
            ok("[1].map(x, x > 0, x * 2)").kind,
            ExprKind::Comprehension(_)
        ));
        assert!(parse("if", 64).is_err());
        ok("a.if");
        ok("a.as.b()");
        ok("a.`b-c`");
        ok("a.`if`");
        assert!(parse("1e999", 64).is_err());
        assert!(parse("A{b: 1}", 64).is_err());
    }
}
