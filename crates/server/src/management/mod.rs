//! The management plane: the Model Studio-compatible API and keygate's own API, behind one
//! authentication middleware and one error boundary.

pub mod authentication;
pub mod boundary;
pub mod call;
pub mod errors;
pub mod form;
pub mod key_auth;
pub mod keygate_api;
pub mod model_studio;
pub mod openapi;
pub mod token_plan;
