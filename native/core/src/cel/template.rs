//! `${expr}` interpolation in action configuration strings: the text
//! around the expressions is kept, each expression's value is inserted as
//! CEL `string()` converts it.
use std::collections::BTreeSet;

use super::compile::{compile, locate, SecretRef};
use super::error::{CompileError, EvalResult};
use super::functions::{as_s, to_display_string};
use super::program::{Activation, Program};
use super::types::Env;
use super::value::Value;

enum Part {
    Text(String),
    Expr(Program),
}

pub struct Template {
    parts: Vec<Part>,
    references: BTreeSet<String>,
    secrets_read: BTreeSet<SecretRef>,
    is_constant: bool,
}

/// The text an interpolated value stands for: `string()` for scalars, the
/// empty string for null, `format`'s `%s` for lists and maps.
pub fn render_value(v: &Value) -> EvalResult<String> {
    match v {
        Value::Null => Ok(String::new()),
        Value::List(_) | Value::Map(_) | Value::Lazy(_) => as_s(v),
        other => Ok(to_display_string(other)?.to_string()),
    }
}

/// Compiles every `${...}` of `template`. Errors are located in the
/// template, not in the embedded expression.
pub fn interpolate(template: &str, env: &Env) -> Result<Template, CompileError> {
    let mut parts = Vec::new();
    let mut references = BTreeSet::new();
    let mut secrets_read = BTreeSet::new();
    let mut text = String::new();
    let mut rest = 0;
    let mut has_expressions = false;
    while let Some(found) = template[rest..].find("${") {
        let start = rest + found;
        if start > 0 && template.as_bytes()[start - 1] == b'$' {
            // `$${` is a literal `${`.
            text.push_str(&template[rest..start - 1]);
            text.push_str("${");
            rest = start + 2;
            continue;
        }
        has_expressions = true;
        text.push_str(&template[rest..start]);
        let body = start + 2;
        let Some(end) = closing_brace(template, body) else {
            // The lexer's own error (an unterminated string...) when it has
            // one, else the unclosed `${`.
            if let Err(e) = compile(&template[body..], env) {
                if e.message.starts_with("unterminated") {
                    return Err(relocate(template, body, e));
                }
            }
            let message = "unterminated '${' in template".to_string();
            return Err(locate(template, start as u32, message));
        };
        if template[body..end].trim().is_empty() {
            return Err(locate(
                template,
                start as u32,
                "empty '${}' in template".into(),
            ));
        }
        let program =
            compile(&template[body..end], env).map_err(|e| relocate(template, body, e))?;
        if !text.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut text)));
        }
        references.extend(program.references().iter().cloned());
        secrets_read.extend(program.secrets_read().iter().cloned());
        parts.push(Part::Expr(program));
        rest = end + 1;
    }
    text.push_str(&template[rest..]);
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(Template {
        parts,
        references,
        secrets_read,
        is_constant: !has_expressions,
    })
}

/// An error of the expression starting at byte `body`, located in the
/// template instead.
fn relocate(template: &str, body: usize, e: CompileError) -> CompileError {
    let mut offset = 0;
    for (i, line) in template[body..].split_inclusive('\n').enumerate() {
        if i + 1 == e.line as usize {
            offset += line
                .char_indices()
                .nth(e.column as usize - 1)
                .map_or(line.len(), |(b, _)| b);
            break;
        }
        offset += line.len();
    }
    locate(template, (body + offset) as u32, e.message)
}

/// The offset of the `}` closing an interpolation whose body starts at
/// `from`: braces nest, and braces inside string literals do not count.
fn closing_brace(s: &str, from: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0usize;
    let mut i = from;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => {
                let triple = b[i..].starts_with(&[q, q, q]);
                i += if triple { 3 } else { 1 };
                loop {
                    if i >= b.len() {
                        return None;
                    }
                    if b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == q && (!triple || b[i..].starts_with(&[q, q, q])) {
                        i += if triple { 3 } else { 1 };
                        break;
                    }
                    i += 1;
                }
                continue;
            }
            b'{' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

impl Template {
    pub fn render(&self, activation: &mut dyn Activation) -> EvalResult<String> {
        self.render_with(|_, p| p.evaluate(activation))
    }

    /// Renders with `eval(i, program)` evaluating the i-th expression.
    pub fn render_with(
        &self,
        mut eval: impl FnMut(usize, &Program) -> EvalResult,
    ) -> EvalResult<String> {
        let mut out = String::new();
        let mut i = 0;
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Expr(p) => {
                    out.push_str(&render_value(&eval(i, p)?)?);
                    i += 1;
                }
            }
        }
        Ok(out)
    }

    /// The compiled expressions, in order.
    pub fn programs(&self) -> impl Iterator<Item = &Program> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(p) => Some(p),
            Part::Text(_) => None,
        })
    }

    pub fn references(&self) -> &BTreeSet<String> {
        &self.references
    }

    /// The `(vault, name)` of every `secrets.get` of its expressions.
    pub fn secrets_read(&self) -> &BTreeSet<SecretRef> {
        &self.secrets_read
    }

    /// True when the template has no `${...}`.
    pub fn is_constant(&self) -> bool {
        self.is_constant
    }
}
