//! The exchange's SBE schema life-cycle (`schema/sbe_schema_lifecycle_prod.json`): which schema
//! is latest, which are deprecated (still served, with a warning) and which are retired
//! (refused at the handshake). A session checks its pinned schema against it before asking for
//! SBE, so a retired schema is a clear error at start-up rather than an HTTP 400 at connect.

use serde::Deserialize;

/// The life-cycle file as published for the live exchange when this crate was generated.
pub const PROD_LIFECYCLE: &str = include_str!("../schema/sbe_schema_lifecycle_prod.json");

/// A calendar date, compared as year, month, day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year.
    pub year: u16,
    /// Month, 1–12.
    pub month: u8,
    /// Day, 1–31.
    pub day: u8,
}

impl Date {
    /// Parses `YYYY-MM-DD`; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let year = s.get(0..4)?.parse().ok()?;
        let month = s.get(5..7)?.parse().ok()?;
        let day = s.get(8..10)?.parse().ok()?;
        ((1..=12).contains(&month) && (1..=31).contains(&day)).then_some(Self { year, month, day })
    }
}

impl core::fmt::Display for Date {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <&str>::deserialize(d)?;
        Self::parse(s)
            .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a YYYY-MM-DD date")))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    id: u16,
    version: u16,
    deprecated_date: Option<Date>,
    retired_date: Option<Date>,
}

/// The parsed life-cycle file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    /// `PROD` or `TESTNET`.
    pub environment: String,
    #[serde(rename = "latestSchema")]
    latest: Entry,
    #[serde(rename = "deprecatedSchemas")]
    deprecated: Vec<Entry>,
    #[serde(rename = "retiredSchemas")]
    retired: Vec<Entry>,
}

/// A usable schema's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The latest schema.
    Latest,
    /// Still served, but deprecated since `since`: responses come in the highest compatible
    /// version, and it will be retired (at least six months after `since`, or on `retires` if the
    /// file already names the day).
    Deprecated {
        /// The day it was deprecated.
        since: Date,
        /// The announced retirement day, if it is still ahead.
        retires: Option<Date>,
    },
}

/// A schema that must not be used, or a life-cycle file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The schema was retired: the exchange refuses sessions that ask for it.
    #[error("SBE schema {id}:{version} was retired on {retired}")]
    Retired {
        /// Schema id.
        id: u16,
        /// Schema version.
        version: u16,
        /// The retirement day.
        retired: Date,
    },
    /// The file does not list the schema at all.
    #[error("SBE schema {id}:{version} is not in the {environment} life-cycle file")]
    NotListed {
        /// Schema id.
        id: u16,
        /// Schema version.
        version: u16,
        /// The file's environment.
        environment: String,
    },
    /// The file is not the expected JSON.
    #[error("SBE life-cycle file: {0}")]
    Parse(#[from] serde_json::Error),
}

impl Lifecycle {
    /// Parses a life-cycle file.
    ///
    /// # Errors
    /// [`LifecycleError::Parse`] if it is not the expected JSON.
    pub fn parse(json: &str) -> Result<Self, LifecycleError> {
        Ok(serde_json::from_str(json)?)
    }

    /// The latest schema's id and version.
    pub fn latest(&self) -> (u16, u16) {
        (self.latest.id, self.latest.version)
    }

    /// The standing of schema `id:version` on `today`.
    ///
    /// # Errors
    /// [`LifecycleError::Retired`] once its retirement day has come;
    /// [`LifecycleError::NotListed`] if the file does not name it.
    pub fn check(&self, id: u16, version: u16, today: Date) -> Result<Status, LifecycleError> {
        let is = |e: &&Entry| e.id == id && e.version == version;
        if is(&&self.latest) {
            return Ok(Status::Latest);
        }
        if let Some(e) = self.deprecated.iter().find(is) {
            let since = e.deprecated_date.unwrap_or(today);
            return Ok(Status::Deprecated {
                since,
                retires: e.retired_date.filter(|r| *r > today),
            });
        }
        if let Some(e) = self.retired.iter().find(is) {
            return match e.retired_date {
                // Listed as retired with the day still ahead: served until then.
                Some(r) if r > today => Ok(Status::Deprecated {
                    since: e.deprecated_date.unwrap_or(today),
                    retires: Some(r),
                }),
                Some(r) => Err(LifecycleError::Retired {
                    id,
                    version,
                    retired: r,
                }),
                None => Err(LifecycleError::Retired {
                    id,
                    version,
                    retired: today,
                }),
            };
        }
        Err(LifecycleError::NotListed {
            id,
            version,
            environment: self.environment.clone(),
        })
    }
}

/// The standing of schema `id:version` on `today` in the bundled live-exchange file
/// ([`PROD_LIFECYCLE`]).
///
/// # Errors
/// As [`Lifecycle::check`], and [`LifecycleError::Parse`] if the bundled file does not parse.
pub fn check_schema(id: u16, version: u16, today: Date) -> Result<Status, LifecycleError> {
    Lifecycle::parse(PROD_LIFECYCLE)?.check(id, version, today)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).expect("test date")
    }

    #[test]
    fn the_pinned_schema_is_the_latest() {
        let status =
            check_schema(crate::SCHEMA_ID, crate::SCHEMA_VERSION, d("2026-12-06")).expect("usable");
        assert_eq!(status, Status::Latest);
        assert_eq!(
            Lifecycle::parse(PROD_LIFECYCLE).expect("parses").latest(),
            (3, 5)
        );
    }

    #[test]
    fn a_deprecated_schema_warns_with_its_date() {
        assert_eq!(
            check_schema(3, 4, d("2026-12-06")).expect("usable"),
            Status::Deprecated {
                since: d("2026-07-07"),
                retires: None
            }
        );
        assert_eq!(
            check_schema(3, 2, d("2026-12-06")).expect("usable"),
            Status::Deprecated {
                since: d("2026-03-25"),
                retires: None
            }
        );
    }

    #[test]
    fn a_retired_schema_is_refused() {
        match check_schema(3, 1, d("2026-12-06")) {
            Err(LifecycleError::Retired {
                id: 3,
                version: 1,
                retired,
            }) => assert_eq!(retired, d("2026-06-29")),
            other => panic!("3:1 should be retired, got {other:?}"),
        }
        assert!(matches!(
            check_schema(1, 0, d("2026-12-06")),
            Err(LifecycleError::Retired {
                id: 1,
                version: 0,
                ..
            })
        ));
    }

    #[test]
    fn a_retirement_still_ahead_is_a_deprecation_with_its_day() {
        assert_eq!(
            check_schema(3, 1, d("2026-06-28")).expect("usable until the 29th"),
            Status::Deprecated {
                since: d("2025-12-18"),
                retires: Some(d("2026-06-29"))
            }
        );
        assert!(check_schema(3, 1, d("2026-06-29")).is_err());
    }

    #[test]
    fn an_unlisted_schema_is_an_error() {
        assert!(matches!(
            check_schema(3, 6, d("2026-12-06")),
            Err(LifecycleError::NotListed {
                id: 3,
                version: 6,
                ..
            })
        ));
    }

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(
            d("2026-07-07"),
            Date {
                year: 2026,
                month: 7,
                day: 7
            }
        );
        assert_eq!(d("2026-07-07").to_string(), "2026-07-07");
        for bad in [
            "2026-7-07",
            "2026-13-01",
            "2026-00-10",
            "20260707",
            "2026-07-0x",
            "",
        ] {
            assert_eq!(Date::parse(bad), None, "{bad}");
        }
        assert!(Lifecycle::parse(r#"{"environment":"PROD","latestSchema":{"id":3,"version":5,"deprecatedDate":"July"},"deprecatedSchemas":[],"retiredSchemas":[]}"#).is_err());
    }
}
