//! Reading values off a simd-json tape without building a DOM.
//!
//! simd-json lays a document out as a flat `Vec<Node>`: an object or array node records how many
//! nodes follow it, scalars take one node, strings borrow the (unescaped) input. [`Val`] is a
//! position on that tape; [`Fields`] and [`Items`] walk an object's pairs and an array's elements,
//! skipping nested values by their node count. Nothing here allocates.
//!
//! The tape comes from simd-json and is well formed, but every access still goes through
//! `get`, so a surprise there is a typed error rather than a panic.

use simd_json::{Node, StaticNode};

use super::ParseError;

/// Nanoseconds per millisecond: Binance and Bybit send times in ms.
const NS_PER_MS: u64 = 1_000_000;

/// How many tape nodes the value starting with `node` occupies.
#[inline]
fn span(node: &Node<'_>) -> usize {
    match node {
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        _ => 1,
    }
}

/// One value on the tape.
#[derive(Clone, Copy, Debug)]
pub(super) struct Val<'t, 'i> {
    nodes: &'t [Node<'i>],
    idx: usize,
}

impl<'t, 'i> Val<'t, 'i> {
    /// The document's root value.
    #[inline]
    pub(super) fn root(nodes: &'t [Node<'i>]) -> Self {
        Self { nodes, idx: 0 }
    }

    #[inline]
    fn node(&self) -> Option<&'t Node<'i>> {
        self.nodes.get(self.idx)
    }

    /// Whether the value is an object.
    #[inline]
    pub(super) fn is_object(&self) -> bool {
        matches!(self.node(), Some(Node::Object { .. }))
    }

    /// The key/value pairs of an object, or `WrongType(field)`.
    #[inline]
    pub(super) fn fields(self, field: &'static str) -> Result<Fields<'t, 'i>, ParseError> {
        match self.node() {
            Some(Node::Object { len, .. }) => Ok(Fields {
                nodes: self.nodes,
                next: self.idx + 1,
                left: *len,
            }),
            _ => Err(ParseError::WrongType(field)),
        }
    }

    /// The values of `keys` in an object, in the order of `keys` (`None` for a key that is
    /// absent; the last one where a key repeats, as a later value overrides), or
    /// `WrongType(field)` if this is not an object. Other keys are ignored.
    #[inline]
    pub(super) fn pick<const N: usize>(
        self,
        field: &'static str,
        keys: [&[u8]; N],
    ) -> Result<[Option<Val<'t, 'i>>; N], ParseError> {
        let mut out = [None; N];
        for (k, v) in self.fields(field)? {
            if let Some(i) = keys.iter().position(|&key| key == k) {
                out[i] = Some(v);
            }
        }
        Ok(out)
    }

    /// The elements of an array, or `WrongType(field)`.
    #[inline]
    pub(super) fn items(self, field: &'static str) -> Result<Items<'t, 'i>, ParseError> {
        match self.node() {
            Some(Node::Array { len, .. }) => Ok(Items {
                nodes: self.nodes,
                next: self.idx + 1,
                left: *len,
            }),
            _ => Err(ParseError::WrongType(field)),
        }
    }

    /// The number of elements of an array, or `WrongType(field)`.
    #[inline]
    pub(super) fn array_len(&self, field: &'static str) -> Result<usize, ParseError> {
        match self.node() {
            Some(Node::Array { len, .. }) => Ok(*len),
            _ => Err(ParseError::WrongType(field)),
        }
    }

    /// A string, borrowed from the input.
    #[inline]
    pub(super) fn str(&self, field: &'static str) -> Result<&'i str, ParseError> {
        match self.node() {
            Some(Node::String(s)) => Ok(s),
            _ => Err(ParseError::WrongType(field)),
        }
    }

    /// A boolean.
    #[inline]
    pub(super) fn bool(&self, field: &'static str) -> Result<bool, ParseError> {
        match self.node() {
            Some(Node::Static(StaticNode::Bool(b))) => Ok(*b),
            _ => Err(ParseError::WrongType(field)),
        }
    }

    /// A non-negative integer id or sequence number.
    #[inline]
    pub(super) fn id(&self, field: &'static str) -> Result<u64, ParseError> {
        match self.node() {
            Some(Node::Static(StaticNode::U64(v))) => Ok(*v),
            Some(Node::Static(StaticNode::I64(v))) => {
                u64::try_from(*v).map_err(|_| ParseError::BadId(field))
            }
            Some(Node::Static(StaticNode::F64(_))) => Err(ParseError::BadId(field)),
            _ => Err(ParseError::WrongType(field)),
        }
    }

    /// A signed integer (for the `-1` some venues put where an id is absent).
    #[inline]
    pub(super) fn signed(&self, field: &'static str) -> Result<i64, ParseError> {
        match self.node() {
            Some(Node::Static(StaticNode::I64(v))) => Ok(*v),
            Some(Node::Static(StaticNode::U64(v))) => {
                i64::try_from(*v).map_err(|_| ParseError::BadId(field))
            }
            Some(Node::Static(StaticNode::F64(_))) => Err(ParseError::BadId(field)),
            _ => Err(ParseError::WrongType(field)),
        }
    }

    /// A millisecond timestamp, returned in nanoseconds.
    #[inline]
    pub(super) fn ms_as_ns(&self, field: &'static str) -> Result<u64, ParseError> {
        let ms = match self.node() {
            Some(Node::Static(StaticNode::U64(v))) => *v,
            Some(Node::Static(StaticNode::I64(_) | StaticNode::F64(_))) => {
                return Err(ParseError::BadTime(field));
            }
            _ => return Err(ParseError::WrongType(field)),
        };
        ms.checked_mul(NS_PER_MS).ok_or(ParseError::BadTime(field))
    }
}

/// Iterator over an object's `(key, value)` pairs.
#[derive(Clone, Debug)]
pub(super) struct Fields<'t, 'i> {
    nodes: &'t [Node<'i>],
    next: usize,
    left: usize,
}

impl<'t, 'i> Iterator for Fields<'t, 'i> {
    type Item = (&'i [u8], Val<'t, 'i>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let key = match self.nodes.get(self.next)? {
            Node::String(k) => k.as_bytes(),
            // simd-json only produces string keys; end the walk rather than misread.
            _ => return None,
        };
        let vidx = self.next + 1;
        let value = self.nodes.get(vidx)?;
        self.next = vidx + span(value);
        self.left -= 1;
        Some((
            key,
            Val {
                nodes: self.nodes,
                idx: vidx,
            },
        ))
    }
}

/// Iterator over an array's elements.
#[derive(Clone, Debug)]
pub(super) struct Items<'t, 'i> {
    nodes: &'t [Node<'i>],
    next: usize,
    left: usize,
}

impl<'t, 'i> Iterator for Items<'t, 'i> {
    type Item = Val<'t, 'i>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let node = self.nodes.get(self.next)?;
        let v = Val {
            nodes: self.nodes,
            idx: self.next,
        };
        self.next += span(node);
        self.left -= 1;
        Some(v)
    }
}

/// A field that must be present.
#[inline]
pub(super) fn required<'t, 'i>(
    v: Option<Val<'t, 'i>>,
    field: &'static str,
) -> Result<Val<'t, 'i>, ParseError> {
    v.ok_or(ParseError::MissingField(field))
}

/// An optional millisecond time in nanoseconds (0 when absent, as [`pinion_core::MarketEvent`] says).
#[inline]
pub(super) fn opt_ms_as_ns(v: Option<Val<'_, '_>>, field: &'static str) -> Result<u64, ParseError> {
    v.map_or(Ok(0), |v| v.ms_as_ns(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_takes_the_named_values_last_one_winning() {
        let mut text = br#"{"a":1,"bb":"x","a":2,"zz":[1,2],"c":true}"#.to_vec();
        let tape = simd_json::to_tape(&mut text).unwrap();
        let root = Val::root(&tape.0);
        let [a, bb, c, missing] = root.pick("t", [b"a", b"bb", b"c", b"d"]).unwrap();
        assert_eq!(a.map(|v| v.id("a")), Some(Ok(2)));
        assert_eq!(
            bb.map(|v| v.str("bb").map(str::to_owned)),
            Some(Ok("x".to_owned()))
        );
        assert_eq!(c.map(|v| v.bool("c")), Some(Ok(true)));
        assert!(missing.is_none());
        let [zz] = root.pick("t", [b"zz"]).unwrap();
        assert!(matches!(
            zz.unwrap().pick("zz", [b"a"]),
            Err(ParseError::WrongType("zz"))
        ));
    }
}
