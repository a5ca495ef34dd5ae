//! What a token lets its holder do.

use serde::Serialize;

use crate::problem::Problem;

/// One Fluid scope. There are exactly three (`ScopeType` in `@fluidframework/driver-definitions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    DocRead,
    DocWrite,
    SummaryWrite,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::DocRead, Scope::DocWrite, Scope::SummaryWrite];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::DocRead => "doc:read",
            Scope::DocWrite => "doc:write",
            Scope::SummaryWrite => "summary:write",
        }
    }

    pub(crate) fn parse(value: &str) -> Result<Self, Problem> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == value)
            .ok_or_else(|| {
                Problem::invalid(
                    Scopes::PARAMETER,
                    "each scope must be one of doc:read, doc:write, summary:write",
                )
            })
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A non-empty set of scopes in the order first requested, without duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes {
    items: [Scope; 3],
    len: usize,
}

impl Scopes {
    pub const PARAMETER: &'static str = "scopes";

    /// `doc:read`, `doc:write`, `summary:write`: what a collaborating client (and its
    /// summarizer, which shares the token provider) needs.
    pub fn all() -> Self {
        Scopes {
            items: Scope::ALL,
            len: 3,
        }
    }

    /// Scopes from a comma-separated list such as `doc:read,doc:write`.
    pub fn parse_list(list: &str) -> Result<Self, Problem> {
        Scopes::from_names(list.split(',').map(str::trim))
    }

    /// Scopes from their names, in order, without duplicates; at least one.
    pub(crate) fn from_names<'a>(
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, Problem> {
        let mut scopes = Scopes {
            items: Scope::ALL,
            len: 0,
        };
        for name in names {
            let scope = Scope::parse(name)?;
            if !scopes.as_slice().contains(&scope) {
                scopes.items[scopes.len] = scope;
                scopes.len += 1;
            }
        }
        if scopes.len == 0 {
            return Err(Problem::invalid(
                Self::PARAMETER,
                "must name at least one scope",
            ));
        }
        Ok(scopes)
    }

    pub fn as_slice(&self) -> &[Scope] {
        &self.items[..self.len]
    }

    /// The scopes' names in order. The log line writes them space-separated, as OAuth writes scope
    /// lists (`doc:read doc:write`), straight into the line, with no list or string built for it.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.as_slice().iter().map(|scope| scope.as_str())
    }

    /// The scopes `keep` accepts, in the same order; `None` when it accepts none.
    pub fn retain(&self, keep: impl Fn(&Scope) -> bool) -> Option<Scopes> {
        let mut kept = Scopes {
            items: Scope::ALL,
            len: 0,
        };
        for scope in self.as_slice().iter().filter(|s| keep(s)) {
            kept.items[kept.len] = *scope;
            kept.len += 1;
        }
        (kept.len > 0).then_some(kept)
    }
}

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.as_slice())
    }
}
