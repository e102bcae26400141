//! What a management handler takes first and what it answers: a [`Call`] (the
//! authenticated caller and the state), or an [`Administrator`] when only the account and
//! its admins may call the route; and an [`Answer`], its `keygate_wire` response in the
//! camelCase success envelope. Every handler of the Model Studio API, the Token Plan
//! operations and keygate's API goes through these, so that the check of the caller, the
//! actor of its operations and the envelope of its answer are written once.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::Json;
use keygate_wire::envelope::Success;

use super::authentication::Authenticated;
use super::errors::ManagementError;
use crate::operations::{Actor, Operations};
use crate::state::AppState;

/// A handler's answer: its response in the success envelope of the request, or the error
/// the boundary renders.
pub type Answer<T> = Result<Json<Success<T>>, ManagementError>;

/// An authenticated management call and the state it works with.
pub struct Call {
    pub state: AppState,
    pub auth: Authenticated,
}

impl FromRequestParts<AppState> for Call {
    type Rejection = ManagementError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Call, ManagementError> {
        Ok(Call { state: state.clone(), auth: Authenticated::from_request_parts(parts, state).await? })
    }
}

impl Call {
    pub fn operations(&self) -> Operations<'_> {
        self.state.operations()
    }

    /// The caller as the actor of an operation, now.
    pub fn actor(&self) -> Actor {
        self.auth.actor(&self.operations())
    }

    /// `body` in the success envelope of this call's request.
    pub fn answer<T>(&self, body: T) -> Answer<T> {
        Ok(Json(Success::new(self.auth.request_id(), body)))
    }
}

/// Proof that the caller may administer its account: the account itself or an active
/// admin RAM user. Handlers that take it cannot run for anyone else (403 `Forbidden`).
pub struct Administrator(pub Call);

impl FromRequestParts<AppState> for Administrator {
    type Rejection = ManagementError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Administrator, ManagementError> {
        let call = Call::from_request_parts(parts, state).await?;
        call.auth.caller.may_administer()?;
        Ok(Administrator(call))
    }
}
