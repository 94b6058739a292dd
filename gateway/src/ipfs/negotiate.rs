//! What a `/ipfs/` request asks for: a raw block or a CAR, which part of
//! the DAG, and in what shape (the trustless gateway specification's
//! `format`, `Accept`, `dag-scope`, `entity-bytes` and CAR parameters).

use crate::error::ApiError;

/// The response type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Raw,
    /// CARv1 in depth-first order; `dups` sends a block each time the walk
    /// meets it rather than once.
    Car {
        dups: bool,
    },
}

/// Which blocks under the root a CAR carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Block,
    Entity,
    All,
}

/// `entity-bytes=from:to`, before the file's length is known. Negative
/// values count from the end; `to = None` is `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntityBytes {
    pub from: i64,
    pub to: Option<i64>,
}

/// The request, read from its query and headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ask {
    pub want: Want,
    /// Whether `format=` named the type (else `Accept` did).
    pub by_format: bool,
    pub scope: Scope,
    pub bytes: Option<EntityBytes>,
}

const RAW: &str = "application/vnd.ipld.raw";
const CAR: &str = "application/vnd.ipld.car";

pub fn ask(query: Option<&str>, accept: Option<&str>) -> Result<Ask, ApiError> {
    let mut format = None;
    let mut scope = None;
    let mut bytes = None;
    let mut car = CarParams::default();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*k {
            "format" => format = Some(v.into_owned()),
            "dag-scope" => scope = Some(parse_scope(&v)?),
            "entity-bytes" => bytes = Some(parse_entity_bytes(&v)?),
            "car-version" => car.version = Some(v.into_owned()),
            "car-order" => car.order = Some(v.into_owned()),
            "car-dups" => car.dups = Some(v.into_owned()),
            _ => {}
        }
    }
    let (want, by_format) = match format.as_deref() {
        Some("raw") => (Want::Raw, true),
        Some("car") => {
            // The query's CAR parameters first, then the Accept header's.
            let from_accept = accept.and_then(car_in_accept).unwrap_or_default();
            (car.or(from_accept).want()?, true)
        }
        Some(other) => {
            return Err(ApiError::NotAcceptable(format!(
                "format={other} is not served here: this trustless gateway answers format=raw and format=car"
            )));
        }
        None => (from_accept(accept, &car)?, false),
    };
    if want == Want::Raw && (scope.is_some() || bytes.is_some()) {
        return Err(ApiError::BadRequest(
            "dag-scope and entity-bytes apply to CAR responses only".into(),
        ));
    }
    // entity-bytes implies the entity scope.
    let scope = match (scope, bytes) {
        (Some(s), _) => s,
        (None, Some(_)) => Scope::Entity,
        (None, None) => Scope::All,
    };
    Ok(Ask {
        want,
        by_format,
        scope,
        bytes,
    })
}

fn parse_scope(v: &str) -> Result<Scope, ApiError> {
    match v {
        "block" => Ok(Scope::Block),
        "entity" => Ok(Scope::Entity),
        "all" => Ok(Scope::All),
        _ => Err(ApiError::BadRequest(format!(
            "dag-scope={v}: expected block, entity or all"
        ))),
    }
}

fn parse_entity_bytes(v: &str) -> Result<EntityBytes, ApiError> {
    let bad = || ApiError::BadRequest(format!("entity-bytes={v}: expected from:to"));
    let (from, to) = v.split_once(':').ok_or_else(bad)?;
    let from: i64 = from.parse().map_err(|_| bad())?;
    let to = match to {
        "*" => None,
        t => Some(t.parse::<i64>().map_err(|_| bad())?),
    };
    if let Some(t) = to
        && from >= 0
        && t >= 0
        && t < from
    {
        return Err(ApiError::BadRequest(format!(
            "entity-bytes={v}: the range ends before it starts"
        )));
    }
    Ok(EntityBytes { from, to })
}

/// The CAR content type parameters (`version`, `order`, `dups`), from the
/// query or from one `Accept` entry.
#[derive(Clone, Debug, Default)]
struct CarParams {
    version: Option<String>,
    order: Option<String>,
    dups: Option<String>,
}

impl CarParams {
    fn or(self, other: CarParams) -> CarParams {
        CarParams {
            version: self.version.or(other.version),
            order: self.order.or(other.order),
            dups: self.dups.or(other.dups),
        }
    }

    fn acceptable(&self) -> bool {
        matches!(self.version.as_deref(), None | Some("1"))
            && matches!(self.order.as_deref(), None | Some("dfs" | "unk"))
            && matches!(self.dups.as_deref(), None | Some("y" | "n"))
    }

    fn want(&self) -> Result<Want, ApiError> {
        if !self.acceptable() {
            return Err(ApiError::NotAcceptable(
                "this gateway sends CARv1 in order=dfs, with dups=y or dups=n".into(),
            ));
        }
        Ok(Want::Car {
            dups: self.dups.as_deref() == Some("y"),
        })
    }
}

/// One `Accept` entry: media type, parameters and quality.
struct Entry<'a> {
    media: &'a str,
    params: Vec<(&'a str, &'a str)>,
    q: f32,
}

fn entries(accept: &str) -> Vec<Entry<'_>> {
    let mut out: Vec<Entry<'_>> = accept
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().filter(|m| !m.is_empty())?;
            let mut q = 1.0;
            let mut params = Vec::new();
            for p in parts {
                let Some((k, v)) = p.split_once('=') else {
                    continue;
                };
                let (k, v) = (k.trim(), v.trim().trim_matches('"'));
                if k.eq_ignore_ascii_case("q") {
                    q = v.parse().unwrap_or(0.0);
                } else {
                    params.push((k, v));
                }
            }
            Some(Entry { media, params, q })
        })
        .filter(|e| e.q > 0.0)
        .collect();
    // Highest quality first; equal ones keep the client's order.
    out.sort_by(|a, b| b.q.total_cmp(&a.q));
    out
}

fn car_params(e: &Entry<'_>) -> CarParams {
    let get = |name: &str| {
        e.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| (*v).to_owned())
    };
    CarParams {
        version: get("version"),
        order: get("order"),
        dups: get("dups"),
    }
}

fn car_in_accept(accept: &str) -> Option<CarParams> {
    entries(accept)
        .iter()
        .filter(|e| e.media.eq_ignore_ascii_case(CAR))
        .map(car_params)
        .find(CarParams::acceptable)
}

fn from_accept(accept: Option<&str>, query: &CarParams) -> Result<Want, ApiError> {
    let listed = accept.map(entries).unwrap_or_default();
    for e in &listed {
        if e.media.eq_ignore_ascii_case(RAW) {
            return Ok(Want::Raw);
        }
        if e.media.eq_ignore_ascii_case(CAR) {
            let params = query.clone().or(car_params(e));
            if params.acceptable() {
                return params.want();
            }
        }
    }
    // A type named, even at q=0, is a choice this gateway cannot meet;
    // only wildcards (or nothing) leave the choice open.
    let specific = accept.is_some_and(|a| {
        a.split(',').any(|item| {
            let media = item.split(';').next().unwrap_or_default().trim();
            !media.is_empty() && !media.contains('*')
        })
    });
    if specific {
        Err(ApiError::NotAcceptable(format!(
            "this trustless gateway sends {RAW} or {CAR} (version=1, order=dfs)"
        )))
    } else {
        Err(ApiError::BadRequest(format!(
            "ask for a verifiable response: Accept: {RAW} or {CAR}, or ?format=raw or ?format=car"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(query: &str, accept: Option<&str>) -> Result<Want, u16> {
        ask(Some(query), accept)
            .map(|a| a.want)
            .map_err(|e| match e {
                ApiError::BadRequest(_) => 400,
                ApiError::NotAcceptable(_) => 406,
                _ => 0,
            })
    }

    #[test]
    fn the_format_parameter_comes_before_accept() {
        assert_eq!(want("format=raw", Some(CAR)), Ok(Want::Raw));
        assert_eq!(want("format=car", Some(RAW)), Ok(Want::Car { dups: false }));
        assert_eq!(want("format=tar", None), Err(406));
    }

    #[test]
    fn accept_is_read_by_quality_with_car_parameters() {
        assert_eq!(want("", Some(RAW)), Ok(Want::Raw));
        assert_eq!(
            want(
                "",
                Some("application/vnd.ipld.car; version=1; order=dfs; dups=y")
            ),
            Ok(Want::Car { dups: true })
        );
        assert_eq!(
            want(
                "",
                Some("application/vnd.ipld.raw;q=0.5, application/vnd.ipld.car")
            ),
            Ok(Want::Car { dups: false })
        );
        // A variant not served is passed over for the next acceptable one.
        assert_eq!(
            want(
                "",
                Some(
                    "application/vnd.ipld.car;order=foo, application/vnd.ipld.car;order=dfs;dups=y;q=0.5"
                )
            ),
            Ok(Want::Car { dups: true })
        );
        assert_eq!(
            want("", Some("application/vnd.ipld.car;version=2")),
            Err(406)
        );
        assert_eq!(want("car-dups=y", Some(CAR)), Ok(Want::Car { dups: true }));
        assert_eq!(want("", Some("text/html")), Err(406));
        assert_eq!(want("", Some("*/*")), Err(400));
        assert_eq!(want("", None), Err(400));
        assert_eq!(want("", Some("application/vnd.ipld.raw;q=0")), Err(406));
    }

    #[test]
    fn scopes_and_entity_bytes() {
        let a = ask(Some("format=car&entity-bytes=-1024:*"), None).unwrap();
        assert_eq!(a.scope, Scope::Entity);
        assert_eq!(
            a.bytes,
            Some(EntityBytes {
                from: -1024,
                to: None
            })
        );
        let a = ask(Some("format=car"), None).unwrap();
        assert_eq!((a.scope, a.bytes), (Scope::All, None));
        let a = ask(Some("format=car&dag-scope=block"), None).unwrap();
        assert_eq!(a.scope, Scope::Block);
        assert!(ask(Some("format=car&dag-scope=some"), None).is_err());
        assert!(ask(Some("format=car&entity-bytes=10:5"), None).is_err());
        assert!(ask(Some("format=car&entity-bytes=a:5"), None).is_err());
        assert!(ask(Some("format=raw&dag-scope=block"), None).is_err());
        assert!(ask(Some("format=car&entity-bytes=499:-1000"), None).is_ok());
    }
}
