//! `weaviate.v1.Filters` → the double's [`Filter`] model (the same one GraphQL `where` uses).
//!
//! The common operators map one to one (Equal … LessThanEqual, Like, And, Or); the property comes
//! from `target.property` or the deprecated `on` path. Operators the double's filter model cannot
//! express are refused with a message naming the double, never silently ignored.

use weaviate_proto::v1::{filter_target, filters, Filters};

use super::GrpcError;
use crate::double::filter::{Filter, FilterValue, Operator};

/// Converts a gRPC filter tree.
pub fn filter(f: &Filters) -> Result<Filter, GrpcError> {
    let op = filters::Operator::try_from(f.operator).unwrap_or(filters::Operator::Unspecified);
    let compare = match op {
        filters::Operator::And => {
            return f
                .filters
                .iter()
                .map(filter)
                .collect::<Result<_, _>>()
                .map(Filter::And)
        }
        filters::Operator::Or => {
            return f
                .filters
                .iter()
                .map(filter)
                .collect::<Result<_, _>>()
                .map(Filter::Or)
        }
        filters::Operator::Equal => Operator::Equal,
        filters::Operator::NotEqual => Operator::NotEqual,
        filters::Operator::GreaterThan => Operator::GreaterThan,
        filters::Operator::GreaterThanEqual => Operator::GreaterThanEqual,
        filters::Operator::LessThan => Operator::LessThan,
        filters::Operator::LessThanEqual => Operator::LessThanEqual,
        filters::Operator::Like => Operator::Like,
        other => {
            return Err(GrpcError::msg(format!(
                "the Weaviate double does not support the filter operator {}",
                other.as_str_name()
            )))
        }
    };
    let path = match f.target.as_ref().and_then(|t| t.target.as_ref()) {
        Some(filter_target::Target::Property(p)) => vec![p.clone()],
        Some(_) => {
            return Err(GrpcError::msg(
                "the Weaviate double does not support reference filter targets",
            ))
        }
        None => f.on.clone(),
    };
    let value = match &f.test_value {
        Some(filters::TestValue::ValueText(t)) => FilterValue::Text(t.clone()),
        Some(filters::TestValue::ValueInt(i)) => FilterValue::Int(*i),
        Some(filters::TestValue::ValueNumber(n)) => FilterValue::Number(*n),
        Some(filters::TestValue::ValueBoolean(b)) => FilterValue::Boolean(*b),
        Some(_) => {
            return Err(GrpcError::msg(
                "the Weaviate double does not support array or geo filter values",
            ))
        }
        None => return Err(GrpcError::msg("filter value is required")),
    };
    Ok(Filter::Compare {
        path,
        op: compare,
        value,
    })
}
