//! The JSON-schema layer: the standard's EPCIS 2.0 JSON schema, compiled from a text the
//! caller reads (e.g. `EPCIS-JSON-Schema.json` of the GS1 EPCIS repository). Nothing is
//! embedded and no reference is fetched: the `jsonschema` crate is built without its HTTP and
//! file resolvers, and the schema is self-contained.
//!
//! The semantic layer ([`crate::parse_json_document`]) does not depend on this one: it checks
//! every structural rule the server needs by itself, so a server without the schema file still
//! rejects malformed documents.

use serde_json::Value;

use crate::error::ValidationError;

/// A compiled JSON schema.
#[derive(Debug)]
pub struct SchemaValidator {
    validator: jsonschema::Validator,
}

/// Why a schema text could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("the schema is not JSON: {0}")]
    Json(String),
    #[error("the schema does not compile: {0}")]
    Compile(String),
}

impl SchemaValidator {
    /// Compiles a schema from its JSON text.
    pub fn from_json_text(schema_text: &str) -> Result<SchemaValidator, SchemaError> {
        let schema: Value = serde_json::from_str(schema_text).map_err(|error| SchemaError::Json(error.to_string()))?;
        let validator = jsonschema::validator_for(&schema).map_err(|error| SchemaError::Compile(error.to_string()))?;
        Ok(SchemaValidator { validator })
    }

    /// Every schema violation of `instance`, each with the JSON pointer of the instance.
    pub fn validate(&self, instance: &Value) -> Vec<ValidationError> {
        self.validator
            .iter_errors(instance)
            .take(crate::ERROR_COUNT_MAXIMUM)
            .map(|error| ValidationError::new(error.instance_path.as_str(), format!("JSON schema: {error}")))
            .collect()
    }
}
