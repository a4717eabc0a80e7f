//! Command-line overrides of config keys (`--set placement.mode=2`, and the named flags that
//! expand to the same thing), applied to the TOML value tree before the typed parse, so an
//! override meets the same `deny_unknown_fields` and validation as the file.

use super::{Config, ConfigError};

/// One `key=value` override. The value is read as a TOML value (`2`, `true`, `"x"`, `[0, 1]`);
/// anything that is not one is taken as a string, so `--set input.source=a.hbt.gz` works.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The dotted key, with `[n]` for an element of an array of tables
    /// (`placement.threads[1].core`).
    pub key: String,
    /// The value.
    pub value: toml::Value,
}

impl Override {
    /// Parses `key=value`.
    pub fn parse(text: &str) -> Result<Override, String> {
        let (key, raw) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: expected key=value"))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("{text:?}: empty key"));
        }
        Ok(Override {
            key: key.to_owned(),
            value: parse_value(raw.trim()),
        })
    }

    /// An override with a string value.
    pub fn string(key: &str, value: impl Into<String>) -> Override {
        Override {
            key: key.to_owned(),
            value: toml::Value::String(value.into()),
        }
    }

    /// An override with any value.
    pub fn value(key: &str, value: impl Into<toml::Value>) -> Override {
        Override {
            key: key.to_owned(),
            value: value.into(),
        }
    }
}

fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

/// Overrides in the order given; a later one wins over an earlier one for the same key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides(pub Vec<Override>);

impl Overrides {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds one.
    pub fn push(&mut self, o: Override) {
        self.0.push(o);
    }

    /// Applies the overrides to a config's text and parses the result.
    pub(super) fn apply(&self, text: &str, origin: &str) -> Result<Config, ConfigError> {
        let mut root: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::single(origin, "", e.to_string()))?;
        let mut problems = Vec::new();
        for o in &self.0 {
            if let Err(message) = set_path(&mut root, &o.key, o.value.clone()) {
                problems.push(super::Problem {
                    key: o.key.clone(),
                    message: format!("cannot override: {message}"),
                });
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError {
                origin: origin.to_owned(),
                problems,
            });
        }
        let merged = format!("{origin} with overrides");
        toml::Value::Table(root)
            .try_into::<Config>()
            .map_err(|e| ConfigError::single(&merged, "", e.to_string().trim_end().to_owned()))
    }
}

/// One step of a key path: a table key, optionally followed by an array index.
fn split_step(step: &str) -> Result<(&str, Option<usize>), String> {
    match step.split_once('[') {
        None => Ok((step, None)),
        Some((name, rest)) => {
            let idx = rest
                .strip_suffix(']')
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| format!("bad index in {step:?}"))?;
            Ok((name, Some(idx)))
        }
    }
}

fn set_path(root: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let steps: Vec<&str> = key.split('.').collect();
    let mut table = root;
    for (i, step) in steps.iter().enumerate() {
        let (name, idx) = split_step(step)?;
        let last = i + 1 == steps.len();
        if last && idx.is_none() {
            table.insert(name.to_owned(), value);
            return Ok(());
        }
        let entry = table
            .entry(name.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let next = match idx {
            None => entry,
            Some(n) => {
                let arr = entry
                    .as_array_mut()
                    .ok_or_else(|| format!("{name} is not an array"))?;
                let len = arr.len();
                let slot = arr
                    .get_mut(n)
                    .ok_or_else(|| format!("{name} has {len} entries, no [{n}]"))?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
        };
        table = next
            .as_table_mut()
            .ok_or_else(|| format!("{name} is not a table"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_toml_or_strings() {
        let o = Override::parse("placement.mode=2").unwrap();
        assert_eq!(o.value, toml::Value::Integer(2));
        let o = Override::parse("input.source = /tmp/a.hbt.gz").unwrap();
        assert_eq!(o.value, toml::Value::String("/tmp/a.hbt.gz".into()));
        let o = Override::parse("placement.cores=[0, 1]").unwrap();
        assert!(o.value.is_array());
        assert!(Override::parse("novalue").is_err());
    }

    #[test]
    fn set_path_reaches_array_elements() {
        let mut t: toml::Table = "[[a]]\nx = 1\n[[a]]\nx = 2\n".parse().unwrap();
        set_path(&mut t, "a[1].x", toml::Value::Integer(9)).unwrap();
        assert_eq!(t["a"][1]["x"].as_integer(), Some(9));
        set_path(&mut t, "b.c", toml::Value::Boolean(true)).unwrap();
        assert_eq!(t["b"]["c"].as_bool(), Some(true));
        assert!(set_path(&mut t, "a[5].x", toml::Value::Integer(1)).is_err());
    }
}
