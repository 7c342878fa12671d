//! A JSON value together with its JSON-pointer path, so every validation error can say
//! where in the document it was found.

use serde_json::{Map, Value};

/// A validation problem at a path; turned into [`crate::FeedError::Invalid`] by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) path: String,
    pub(crate) message: String,
}

pub(crate) type Checked<T> = Result<T, Problem>;

#[derive(Debug, Clone)]
pub(crate) struct Node<'a> {
    pub(crate) value: &'a Value,
    pub(crate) path: String,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Escapes a key for a JSON pointer (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl<'a> Node<'a> {
    pub(crate) fn root(value: &'a Value) -> Self {
        Node {
            value,
            path: String::new(),
        }
    }

    pub(crate) fn problem(&self, message: impl Into<String>) -> Problem {
        Problem {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    fn child(&self, key: &str, value: &'a Value) -> Node<'a> {
        Node {
            value,
            path: format!("{}/{}", self.path, escape(key)),
        }
    }

    pub(crate) fn obj(&self) -> Checked<&'a Map<String, Value>> {
        self.value
            .as_object()
            .ok_or_else(|| self.problem(format!("expected an object, found {}", kind(self.value))))
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.value.get(key).is_some()
    }

    /// A field that must be present.
    pub(crate) fn req(&self, key: &str) -> Checked<Node<'a>> {
        let map = self.obj()?;
        map.get(key)
            .map(|v| self.child(key, v))
            .ok_or_else(|| self.problem(format!("missing required field '{key}'")))
    }

    /// A field that may be absent; an explicit `null` counts as absent.
    pub(crate) fn opt(&self, key: &str) -> Checked<Option<Node<'a>>> {
        let map = self.obj()?;
        Ok(match map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(self.child(key, v)),
        })
    }

    pub(crate) fn str(&self) -> Checked<&'a str> {
        self.value
            .as_str()
            .ok_or_else(|| self.problem(format!("expected a string, found {}", kind(self.value))))
    }

    /// A required, non-empty string field.
    pub(crate) fn req_str(&self, key: &str) -> Checked<&'a str> {
        let n = self.req(key)?;
        let s = n.str()?;
        if s.is_empty() {
            return Err(n.problem("must not be empty"));
        }
        Ok(s)
    }

    pub(crate) fn opt_str(&self, key: &str) -> Checked<Option<&'a str>> {
        match self.opt(key)? {
            None => Ok(None),
            Some(n) => n.str().map(Some),
        }
    }

    /// A string field whose value must be one of `allowed`.
    pub(crate) fn enum_str(&self, key: &str, allowed: &[&str]) -> Checked<&'a str> {
        let n = self.req(key)?;
        n.one_of(allowed)
    }

    pub(crate) fn one_of(&self, allowed: &[&str]) -> Checked<&'a str> {
        let s = self.str()?;
        if allowed.contains(&s) {
            Ok(s)
        } else {
            Err(self.problem(format!("'{s}' is not one of {}", allowed.join(", "))))
        }
    }

    pub(crate) fn arr(&self) -> Checked<Vec<Node<'a>>> {
        let items = self.value.as_array().ok_or_else(|| {
            self.problem(format!("expected an array, found {}", kind(self.value)))
        })?;
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| Node {
                value: v,
                path: format!("{}/{i}", self.path),
            })
            .collect())
    }

    /// Items of an array, also accepting `{}` for an empty list: some generators (Alpine's
    /// secdb, the Debian tracker) serialise empty collections as the wrong kind of empty.
    pub(crate) fn arr_lenient(&self) -> Checked<Vec<Node<'a>>> {
        match self.value {
            Value::Object(m) if m.is_empty() => Ok(Vec::new()),
            _ => self.arr(),
        }
    }

    /// Entries of an object, also accepting `[]` for an empty map (see [`Node::arr_lenient`]).
    pub(crate) fn entries_lenient(&self) -> Checked<Vec<(&'a str, Node<'a>)>> {
        match self.value {
            Value::Array(a) if a.is_empty() => Ok(Vec::new()),
            _ => self.entries(),
        }
    }

    /// The items of an optional array field (empty when absent).
    pub(crate) fn opt_arr(&self, key: &str) -> Checked<Vec<Node<'a>>> {
        match self.opt(key)? {
            None => Ok(Vec::new()),
            Some(n) => n.arr(),
        }
    }

    /// Strings of an optional array-of-strings field.
    pub(crate) fn opt_strs(&self, key: &str) -> Checked<Vec<String>> {
        self.opt_arr(key)?
            .iter()
            .map(|n| n.str().map(str::to_owned))
            .collect()
    }

    pub(crate) fn entries(&self) -> Checked<Vec<(&'a str, Node<'a>)>> {
        Ok(self
            .obj()?
            .iter()
            .map(|(k, v)| (k.as_str(), self.child(k, v)))
            .collect())
    }

    /// A string or number rendered as text (scores are numbers in some feeds, strings in others).
    pub(crate) fn scalar_text(&self) -> Checked<String> {
        match self.value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            v => Err(self.problem(format!("expected a string or number, found {}", kind(v)))),
        }
    }

    pub(crate) fn f64(&self) -> Checked<f64> {
        self.value
            .as_f64()
            .ok_or_else(|| self.problem(format!("expected a number, found {}", kind(self.value))))
    }
}
